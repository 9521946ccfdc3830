# GPU workloads only on the tenant's node pools (nodeSelector or required affinity selecting
# every label of one of them), never on a pool dedicated to another tenant, and AI workloads
# never tolerating the taints that keep other tenants off their pools.
package guard.tenancy.node_pools

import data.guard.lib.fmt

controls := ["NIST-AI-RMF GOVERN-1.4", "NIST-AI-RMF MEASURE-2.7"]

# The node pools the pod is confined to ([] when it is not confined).
pools := p if {
	p := input.workload.placement.nodePools
	is_array(p)
} else := []

deny contains v if {
	input.workload.gpu.total > 0
	count(input.tenant.gpu.nodePools) > 0
	input.workload.placement.nodePools == null
	v := {
		"rule": "gpu_pool_unconstrained",
		"severity": "high",
		"controls": controls,
		"message": sprintf("%s %q requests GPUs without a nodeSelector or affinity confining it to tenant %q's node pools %s", [
			input.workload.kind, input.workload.name, input.tenant.name, fmt.value(input.tenant.gpu.nodePools),
		]),
	}
}

deny contains v if {
	input.workload.gpu.total > 0
	input.tenant != null
	some name in pools
	not name in input.tenant.gpu.nodePools
	v := {
		"rule": "gpu_pool_not_tenant",
		"severity": "high",
		"controls": controls,
		"message": sprintf("%s %q may land on node pool %q; tenant %q may use %s", [
			input.workload.kind, input.workload.name, name, input.tenant.name, fmt.value(input.tenant.gpu.nodePools),
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

# Tolerating the taints of a pool dedicated to another tenant lets the scheduler place the pod
# there as soon as its node selector allows it: refused for AI workloads whatever the selector.
deny contains v if {
	input.workload.ai
	some t in input.workload.placement.tolerations # first: most pods tolerate nothing
	some pool in input.cluster.nodePools
	pool.tenant != null
	pool.tenant != object.get(input, ["tenant", "name"], null)
	some taint in pool.taints
	tolerates(t, taint)
	v := {
		"rule": "tolerates_other_tenant_pool",
		"severity": "high",
		"controls": controls,
		"message": sprintf("%s %q tolerates taint %s=%s:%s of node pool %q, dedicated to tenant %q (toleration %s)", [
			input.workload.kind, input.workload.name, taint.key, fmt.value(taint.value), taint.effect, pool.name, pool.tenant, fmt.value(t),
		]),
	}
}

# Kubernetes toleration semantics: an empty key with Exists tolerates every taint; otherwise the
# key must match, and the value too unless the operator is Exists (a missing value is "", the
# input's null included); an empty effect matches all.
tolerates(t, taint) if {
	object.get(t, "operator", "Equal") == "Exists"
	object.get(t, "key", "") == ""
	effect_matches(t, taint)
}

tolerates(t, taint) if {
	object.get(t, "key", "") == taint.key
	object.get(t, "operator", "Equal") == "Exists"
	effect_matches(t, taint)
}

tolerates(t, taint) if {
	object.get(t, "key", "") == taint.key
	object.get(t, "operator", "Equal") == "Equal"
	text(object.get(t, "value", "")) == text(object.get(taint, "value", ""))
	effect_matches(t, taint)
}

text(x) := x if is_string(x)
else := ""

effect_matches(t, _) if object.get(t, "effect", "") == ""

effect_matches(t, taint) if t.effect == taint.effect
