package guard.gpu.products_test

import data.guard.gpu.products
import data.guard.lib.fixtures

placed_on(list) := fixtures.patched([{"op": "replace", "path": "/workload/placement/gpuProducts", "value": list}])

test_allowed_pinned_product if {
	count(products.deny) == 0 with input as fixtures.base
	count(products.warn) == 0 with input as fixtures.base
}

test_denied_unconstrained if {
	fixtures.rules(products.deny) == {"gpu_product_unconstrained"} with input as placed_on(null)
}

test_denied_product_not_allowed if {
	violations := products.deny with input as placed_on(["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-40GB"])
	fixtures.rules(violations) == {"gpu_product_not_allowed"}
	count(violations) == 1
}

test_warned_unknown_product if {
	doc := json.patch(placed_on(["NVIDIA-B200"]), [{"op": "replace", "path": "/tenant/gpu/products", "value": []}])
	count(products.deny) == 0 with input as doc
	fixtures.rules(products.warn) == {"gpu_product_unknown"} with input as doc
}

test_allowed_cpu_workload_unconstrained if {
	doc := json.patch(placed_on(null), [{"op": "replace", "path": "/workload/gpu/total", "value": 0}])
	count(products.deny) == 0 with input as doc
}
