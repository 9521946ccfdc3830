package guard.gpu.dra_test

import data.guard.gpu.dra
import data.guard.lib.fixtures

claim(resolved, devices) := fixtures.patched([
	{"op": "replace", "path": "/workload/containers/0/claims", "value": ["gpu"]},
	{"op": "replace", "path": "/workload/resourceClaims", "value": [{
		"name": "gpu", "resourceClaimName": null, "resourceClaimTemplateName": "one-gpu",
		"resolved": resolved, "devices": devices,
	}]},
])

one_gpu := [{"request": "gpu", "deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount", "count": 1, "gpu": true}]

test_allowed_no_claims if {
	count(dra.deny) == 0 with input as fixtures.base
}

test_allowed_resolved_bounded_claim if {
	count(dra.deny) == 0 with input as claim(true, one_gpu)
}

test_denied_unresolved_claim if {
	violations := dra.deny with input as claim(false, [])
	fixtures.rules(violations) == {"claim_unresolved"}
	some v in violations
	contains(v.message, "one-gpu")
}

test_denied_allocation_mode_all if {
	all_gpus := [object.union(one_gpu[0], {"allocationMode": "All", "count": null})]
	fixtures.rules(dra.deny) == {"claim_unbounded"} with input as claim(true, all_gpus)
}

test_denied_undeclared_claim if {
	doc := fixtures.patched([{"op": "replace", "path": "/workload/containers/0/claims", "value": ["gpu"]}])
	fixtures.rules(dra.deny) == {"claim_undeclared"} with input as doc
}
