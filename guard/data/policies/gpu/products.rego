# GPU workloads must be confined to the GPU products the tenant may use: a nodeSelector or
# required node affinity on nvidia.com/gpu.product, or node pools of those products.
package guard.gpu.products

import data.guard.lib.fmt

controls := ["NIST-AI-RMF GOVERN-1.4", "NIST-AI-RMF MANAGE-2.1"]

# The GPU products the pod is confined to ([] when it is not confined: see input.schema.json).
products := p if {
	p := input.workload.placement.gpuProducts
	is_array(p)
} else := []

restricted if count(input.tenant.gpu.products) > 0

deny contains v if {
	input.workload.gpu.total > 0
	restricted
	input.workload.placement.gpuProducts == null
	v := {
		"rule": "gpu_product_unconstrained",
		"severity": "medium",
		"controls": controls,
		"message": sprintf("%s %q requests GPUs without choosing a product: expected nodeSelector or required affinity on nvidia.com/gpu.product in %s", [
			input.workload.kind, input.workload.name, fmt.value(input.tenant.gpu.products),
		]),
	}
}

deny contains v if {
	input.workload.gpu.total > 0
	restricted
	some product in products
	not product in input.tenant.gpu.products
	v := {
		"rule": "gpu_product_not_allowed",
		"severity": "medium",
		"controls": controls,
		"message": sprintf("%s %q may land on GPU product %q; tenant %q may use %s", [
			input.workload.kind, input.workload.name, product, input.tenant.name, fmt.value(input.tenant.gpu.products),
		]),
	}
}

warn contains v if {
	input.workload.gpu.total > 0
	some product in products
	not input.cluster.gpuProducts[product]
	v := {
		"rule": "gpu_product_unknown",
		"severity": "low",
		"controls": controls,
		"message": sprintf("GPU product %q is not in the cluster facts (known: %s): memory and power checks cannot use it", [
			product, fmt.value(object.keys(input.cluster.gpuProducts)),
		]),
	}
}
