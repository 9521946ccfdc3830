package guard.tenancy.namespace_test

import data.guard.lib.fixtures
import data.guard.tenancy.namespace

test_allowed_tenant_namespace if {
	count(namespace.deny) == 0 with input as fixtures.base
}

test_denied_ai_workload_without_tenant if {
	doc := fixtures.patched([{"op": "replace", "path": "/tenant", "value": null}])
	violations := namespace.deny with input as doc
	fixtures.rules(violations) == {"namespace_without_tenant"}
}

test_allowed_without_tenancy_configured if {
	doc := fixtures.patched([
		{"op": "replace", "path": "/tenant", "value": null},
		{"op": "replace", "path": "/otherTenants", "value": []},
	])
	count(namespace.deny) == 0 with input as doc
}

test_allowed_non_ai_workload_without_tenant if {
	doc := fixtures.patched([
		{"op": "replace", "path": "/tenant", "value": null},
		{"op": "replace", "path": "/workload/ai", "value": false},
	])
	count(namespace.deny) == 0 with input as doc
}
