package guard.provenance.licenses_test

import data.guard.lib.fixtures
import data.guard.provenance.licenses

test_allowed_licence_in_tenant_list if {
	count(licenses.deny) == 0 with input as fixtures.base
}

test_denied_licence_not_in_tenant_list if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/1/facts/licenses", "value": ["LicenseRef-llama3-community"]}])
	violations := licenses.deny with input as doc
	fixtures.rules(violations) == {"license_not_allowed"}
	some v in violations
	contains(v.message, `"LicenseRef-llama3-community"`)
	contains(v.message, `tenant "team-a"`)
}

test_denied_undeclared_licence if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/1/facts/licenses", "value": []}])
	fixtures.rules(licenses.deny) == {"license_undeclared"} with input as doc
}

test_denied_dataset_licence if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/1/facts/datasets/0/licenses", "value": ["CC-BY-NC-4.0"]}])
	fixtures.rules(licenses.deny) == {"dataset_license_not_allowed"} with input as doc
}

test_default_list_without_tenant if {
	doc := fixtures.patched([
		{"op": "replace", "path": "/tenant", "value": null},
		{"op": "replace", "path": "/artifacts/1/facts/datasets/0/licenses", "value": ["MIT"]},
	])
	count(licenses.deny) == 0 with input as doc
	bad := json.patch(doc, [{"op": "replace", "path": "/artifacts/1/facts/licenses", "value": ["LicenseRef-internal"]}])
	fixtures.rules(licenses.deny) == {"license_not_allowed"} with input as bad
}
