# GPU workloads only on the tenant's node pools (nodeSelector or required affinity selecting
# every label of one of them), and never on a pool dedicated to another tenant.
package guard.tenancy.node_pools

controls := ["NIST-AI-RMF GOVERN-1.4", "NIST-AI-RMF MEASURE-2.7"]

# The node pools the pod is confined to ([] when it is not confined).
pools := p if {
	p := input.workload.placement.nodePools
	is_array(p)
} else := []

gpu_workload if input.workload.gpu.total > 0

deny contains v if {
	gpu_workload
	count(input.tenant.gpu.nodePools) > 0
	input.workload.placement.nodePools == null
	v := {
		"rule": "gpu_pool_unconstrained",
		"severity": "high",
		"controls": controls,
		"message": sprintf("%s %q requests GPUs without a nodeSelector or affinity confining it to tenant %q's node pools %v", [
			input.workload.kind, input.workload.name, input.tenant.name, input.tenant.gpu.nodePools,
		]),
	}
}

deny contains v if {
	gpu_workload
	input.tenant != null
	some name in pools
	not name in input.tenant.gpu.nodePools
	v := {
		"rule": "gpu_pool_not_tenant",
		"severity": "high",
		"controls": controls,
		"message": sprintf("%s %q may land on node pool %q; tenant %q may use %v", [
			input.workload.kind, input.workload.name, name, input.tenant.name, input.tenant.gpu.nodePools,
		]),
	}
}

deny contains v if {
	input.workload.ai
	some name in pools
	some pool in input.cluster.nodePools
	pool.name == name
	pool.tenant != null
	pool.tenant != object.get(input, ["tenant", "name"], null)
	v := {
		"rule": "pool_of_other_tenant",
		"severity": "critical",
		"controls": controls,
		"message": sprintf("%s %q targets node pool %q, dedicated to tenant %q", [input.workload.kind, input.workload.name, name, pool.tenant]),
	}
}
