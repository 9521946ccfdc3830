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

dra_devices(class) := fixtures.patched([{"op": "replace", "path": "/workload/resourceClaims", "value": [{
	"name": "gpu", "resourceClaimName": null, "resourceClaimTemplateName": "one", "resolved": true,
	"devices": [{"request": "gpu", "deviceClassName": class, "allocationMode": "ExactCount", "count": 1, "gpu": true}],
}]}])

test_denied_dra_mig_devices_for_a_tenant_without_profiles if {
	doc := json.patch(dra_devices("mig.nvidia.com"), [{"op": "replace", "path": "/tenant/gpu/migProfiles", "value": []}])
	violations := mig.deny with input as doc
	fixtures.rules(violations) == {"mig_profile_not_allowed"}
	some v in violations
	contains(v.message, `tenant "team-a" may use no MIG profile`)
}

test_allowed_dra_mig_devices_for_a_tenant_with_profiles if {
	count(mig.deny) == 0 with input as dra_devices("mig.nvidia.com")
}

test_allowed_dra_whole_gpus_for_a_tenant_without_profiles if {
	doc := json.patch(dra_devices("gpu.nvidia.com"), [{"op": "replace", "path": "/tenant/gpu/migProfiles", "value": []}])
	count(mig.deny) == 0 with input as doc
}
