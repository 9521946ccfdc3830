package guard.provenance.personal_data_test

import data.guard.lib.fixtures
import data.guard.provenance.personal_data

dataset(field, value) := fixtures.patched([{"op": "replace", "path": concat("/", ["/artifacts/1/facts/datasets/0", field]), "value": value}])

allowing_tenant(doc) := json.patch(doc, [{"op": "replace", "path": "/tenant/personalData", "value": true}])

test_allowed_no_personal_data if {
	count(personal_data.deny) == 0 with input as fixtures.base
}

test_denied_personal_data_for_tenant if {
	violations := personal_data.deny with input as dataset("personalData", true)
	fixtures.rules(violations) == {"personal_data_not_allowed"}
	some v in violations
	v.severity == "critical"
}

test_denied_undeclared_personal_data if {
	fixtures.rules(personal_data.deny) == {"personal_data_not_allowed"} with input as dataset("personalData", null)
}

test_denied_sensitive_data if {
	fixtures.rules(personal_data.deny) == {"sensitive_data_not_allowed"} with input as dataset("sensitiveData", true)
}

test_denied_without_lawful_basis if {
	fixtures.rules(personal_data.deny) == {"personal_data_without_basis"} with input as allowing_tenant(dataset("personalData", true))
}

test_allowed_with_lawful_basis if {
	doc := json.patch(allowing_tenant(dataset("personalData", true)), [{"op": "replace", "path": "/artifacts/1/facts/datasets/0/consentBasis", "value": "contract"}])
	count(personal_data.deny) == 0 with input as doc
}
