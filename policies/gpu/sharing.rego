# Time-sliced GPUs (nvidia.com/gpu.shared) have no memory isolation between sharers: a tenant
# may use them only if allowed, and only on time-sliced node pools dedicated to that tenant, so
# a GPU is never shared across tenants. A pool of sharing time-sliced time-slices whole GPUs
# too (the device plugin advertises its replicas as nvidia.com/gpu unless renameByDefault): a
# container asking for nvidia.com/gpu on such a pool is held to the same rules.
package guard.gpu.sharing

import data.guard.lib.fmt

controls := ["NIST-AI-RMF MEASURE-2.7", "EU-AI-Act Art.15"]

# The node pools the pod is confined to ([] when it is not confined).
pools := p if {
	p := input.workload.placement.nodePools
	is_array(p)
} else := []

tenant_name := input.tenant.name if input.tenant != null
else := "(none)"

deny contains v if {
	some c in input.workload.containers
	c.gpu.shared
	not input.tenant.gpu.allowShared
	v := {
		"rule": "shared_gpu_not_allowed",
		"severity": "high",
		"controls": controls,
		"container": c.name,
		"message": sprintf("%s %q requests nvidia.com/gpu.shared; tenant %s may not use time-sliced GPUs", [c.type, c.name, tenant_name]),
	}
}

deny contains v if {
	some c in input.workload.containers
	c.gpu.shared
	input.tenant.gpu.allowShared
	input.workload.placement.nodePools == null
	v := {
		"rule": "shared_gpu_unpinned",
		"severity": "high",
		"controls": controls,
		"container": c.name,
		"message": sprintf("%s %q requests nvidia.com/gpu.shared without a node selector pinning it to a time-sliced pool dedicated to tenant %s", [c.type, c.name, tenant_name]),
	}
}

deny contains v if {
	some c in input.workload.containers
	c.gpu.shared
	input.tenant.gpu.allowShared
	some name in pools
	some pool in input.cluster.nodePools
	pool.name == name
	not dedicated_time_sliced(pool)
	v := {
		"rule": "shared_gpu_cross_tenant",
		"severity": "high",
		"controls": controls,
		"container": c.name,
		"message": sprintf("%s %q: node pool %q shares GPUs (sharing=%s, tenant=%s); expected a time-sliced pool dedicated to tenant %s", [
			c.type, c.name, pool.name, pool.sharing, fmt.value(pool.tenant), tenant_name,
		]),
	}
}

dedicated_time_sliced(pool) if {
	pool.sharing == "time-sliced"
	pool.tenant == input.tenant.name
}

# The time-sliced pools the pod is confined to (none when it is not confined).
time_sliced_pools contains pool if {
	some name in pools
	some pool in input.cluster.nodePools
	pool.name == name
	pool.sharing == "time-sliced"
}

# Containers asking for whole nvidia.com/gpu (not .shared: the rules above) on a time-sliced pool.
whole_gpu_containers contains c if {
	count(time_sliced_pools) > 0
	some c in input.workload.containers
	object.get(object.union(c.gpu.requests, c.gpu.limits), "nvidia.com/gpu", 0) > 0
}

deny contains v if {
	some c in whole_gpu_containers
	not input.tenant.gpu.allowShared
	v := {
		"rule": "shared_gpu_not_allowed",
		"severity": "high",
		"controls": controls,
		"container": c.name,
		"message": sprintf("%s %q requests nvidia.com/gpu on time-sliced node pool(s) %s; tenant %s may not use time-sliced GPUs", [
			c.type, c.name, fmt.value(sort([p.name | some p in time_sliced_pools])), tenant_name,
		]),
	}
}

deny contains v if {
	some c in whole_gpu_containers
	input.tenant.gpu.allowShared
	some pool in time_sliced_pools
	not dedicated_time_sliced(pool)
	v := {
		"rule": "shared_gpu_cross_tenant",
		"severity": "high",
		"controls": controls,
		"container": c.name,
		"message": sprintf("%s %q requests nvidia.com/gpu on node pool %q, which time-slices its GPUs (tenant=%s); expected a time-sliced pool dedicated to tenant %s", [
			c.type, c.name, pool.name, fmt.value(pool.tenant), tenant_name,
		]),
	}
}
