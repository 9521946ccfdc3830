# GPUs per container and per pod capped by the tenant's quota. The pod total counts extended
# resources (nvidia.com/gpu, MIG slices, shared GPUs; init containers as Kubernetes does) and
# GPU devices of DRA resource claims.
package guard.gpu.quota

import data.guard.lib.fmt

controls := ["NIST-AI-RMF GOVERN-1.4", "CIS-K8s 5.7.1"]

deny contains v if {
	cap := input.tenant.gpu.maxPerContainer
	cap != null
	some c in input.workload.containers
	c.gpu.count > cap
	v := {
		"rule": "gpu_per_container_exceeded",
		"severity": "medium",
		"controls": controls,
		"container": c.name,
		"message": sprintf("%s %q requests %s GPUs; tenant %q allows at most %s per container", [c.type, c.name, fmt.number(c.gpu.count), input.tenant.name, fmt.number(cap)]),
	}
}

deny contains v if {
	cap := input.tenant.gpu.maxPerPod
	cap != null
	input.workload.gpu.total > cap
	v := {
		"rule": "gpu_per_pod_exceeded",
		"severity": "medium",
		"controls": controls,
		"message": sprintf("%s %q requests %s GPUs per pod (%s extended resources, %s DRA devices); tenant %q allows at most %s", [
			input.workload.kind, input.workload.name, fmt.number(input.workload.gpu.total), fmt.number(input.workload.gpu.extended),
			fmt.number(input.workload.gpu.dra), input.tenant.name, fmt.number(cap),
		]),
	}
}
