package guard.gpu.fit_test

import data.guard.gpu.fit
import data.guard.lib.fixtures

model(params, precision) := fixtures.patched([
	{"op": "replace", "path": "/artifacts/1/facts/model/parameterCount", "value": params},
	{"op": "replace", "path": "/artifacts/1/facts/model/precision", "value": precision},
])

gpus(doc, resources, count) := json.patch(doc, [
	{"op": "replace", "path": "/workload/containers/0/gpu/requests", "value": resources},
	{"op": "replace", "path": "/workload/containers/0/gpu/limits", "value": resources},
	{"op": "replace", "path": "/workload/containers/0/gpu/count", "value": count},
])

test_allowed_8b_bf16_on_h100 if {
	count(fit.deny) == 0 with input as fixtures.base
	count(fit.warn) == 0 with input as fixtures.base
}

test_denied_70b_bf16_on_one_h100 if {
	violations := fit.deny with input as model(70553706496, "bf16")
	fixtures.rules(violations) == {"model_exceeds_gpu_memory"}
	some v in violations
	contains(v.message, "needs 131.4 GiB")
	contains(v.message, "1 x nvidia.com/gpu")
}

test_allowed_70b_on_two_h100 if {
	doc := gpus(model(70553706496, "bf16"), {"nvidia.com/gpu": 2}, 2)
	count(fit.deny) == 0 with input as doc
}

test_quantization_wins_over_precision if {
	doc := json.patch(model(70553706496, "bf16"), [{"op": "replace", "path": "/artifacts/1/facts/model/quantization", "value": "INT4"}])
	count(fit.deny) == 0 with input as doc
}

test_denied_mig_slice_too_small if {
	doc := gpus(fixtures.base, {"nvidia.com/mig-1g.10gb": 1}, 1)
	violations := fit.deny with input as doc
	fixtures.rules(violations) == {"model_exceeds_gpu_memory"}
	some v in violations
	contains(v.message, "give 10")
}

test_warned_tight_fit if {
	# 40e9 parameters in bf16 = 74.5 GiB of 80 GiB
	doc := model(40000000000, "bf16")
	count(fit.deny) == 0 with input as doc
	fixtures.rules(fit.warn) == {"model_tight_fit"} with input as doc
}

test_warned_unknown_size if {
	doc := model(null, "bf16")
	count(fit.deny) == 0 with input as doc
	fixtures.rules(fit.warn) == {"model_size_unknown"} with input as doc
}

test_warned_unknown_product if {
	doc := fixtures.patched([{"op": "replace", "path": "/workload/placement/gpuProducts", "value": null}])
	count(fit.deny) == 0 with input as doc
	fixtures.rules(fit.warn) == {"gpu_memory_unknown"} with input as doc
}

test_dra_devices_count if {
	doc := fixtures.patched([
		{"op": "replace", "path": "/artifacts/1/facts/model/parameterCount", "value": 70553706496},
		{"op": "replace", "path": "/workload/containers/0/claims", "value": ["gpu"]},
		{"op": "replace", "path": "/workload/resourceClaims", "value": [{"name": "gpu", "resolved": true, "devices": [
			{"request": "gpu", "deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount", "count": 1, "gpu": true},
		]}]},
	])
	count(fit.deny) == 0 with input as doc
}

test_cpu_container_not_checked if {
	doc := gpus(model(70553706496, "bf16"), {}, 0)
	count(fit.deny) == 0 with input as doc
	count(fit.warn) == 0 with input as doc
}
