package guard.gpu.quota_test

import data.guard.gpu.quota
import data.guard.lib.fixtures

test_allowed_within_quota if {
	count(quota.deny) == 0 with input as fixtures.base
}

test_denied_gpus_per_container if {
	doc := fixtures.patched([{"op": "replace", "path": "/workload/containers/0/gpu/count", "value": 6}])
	violations := quota.deny with input as doc
	fixtures.rules(violations) == {"gpu_per_container_exceeded"}
	some v in violations
	v.container == "server"
	contains(v.message, "requests 6 GPUs")
	contains(v.message, "at most 4")
}

test_denied_gpus_per_pod_counts_dra if {
	doc := fixtures.patched([
		{"op": "replace", "path": "/workload/gpu", "value": {"extended": 4, "dra": 5, "total": 9}},
	])
	violations := quota.deny with input as doc
	fixtures.rules(violations) == {"gpu_per_pod_exceeded"}
	some v in violations
	contains(v.message, "5 DRA devices")
}

test_allowed_without_caps if {
	doc := fixtures.patched([
		{"op": "replace", "path": "/tenant/gpu/maxPerContainer", "value": null},
		{"op": "replace", "path": "/tenant/gpu/maxPerPod", "value": null},
		{"op": "replace", "path": "/workload/containers/0/gpu/count", "value": 64},
	])
	count(quota.deny) == 0 with input as doc
}
