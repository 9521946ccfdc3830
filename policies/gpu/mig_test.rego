package guard.gpu.mig_test

import data.guard.gpu.mig
import data.guard.lib.fixtures

slice(profile) := fixtures.patched([{"op": "replace", "path": "/workload/containers/0/gpu/migProfiles", "value": [profile]}])

test_allowed_no_mig if {
	count(mig.deny) == 0 with input as fixtures.base
}

test_allowed_tenant_profile if {
	count(mig.deny) == 0 with input as slice("3g.40gb")
}

test_denied_profile_not_allowed if {
	violations := mig.deny with input as slice("7g.80gb")
	fixtures.rules(violations) == {"mig_profile_not_allowed"}
	some v in violations
	contains(v.message, `"7g.80gb"`)
}

test_denied_unknown_profile if {
	doc := json.patch(slice("9g.99gb"), [{"op": "add", "path": "/tenant/gpu/migProfiles/-", "value": "9g.99gb"}])
	fixtures.rules(mig.deny) == {"mig_profile_unknown"} with input as doc
}
