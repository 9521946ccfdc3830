package guard.tenancy.node_pools_test

import data.guard.lib.fixtures
import data.guard.tenancy.node_pools

on_pools(pools) := fixtures.patched([{"op": "replace", "path": "/workload/placement/nodePools", "value": pools}])

test_allowed_own_pool if {
	count(node_pools.deny) == 0 with input as fixtures.base
}

test_denied_unconstrained if {
	fixtures.rules(node_pools.deny) == {"gpu_pool_unconstrained"} with input as on_pools(null)
}

test_denied_other_tenant_pool if {
	violations := node_pools.deny with input as on_pools(["team-b-a100"])
	fixtures.rules(violations) == {"gpu_pool_not_tenant", "pool_of_other_tenant"}
}

test_denied_pool_outside_tenant_list if {
	doc := json.patch(on_pools(["shared-mig"]), [{"op": "replace", "path": "/tenant/gpu/nodePools", "value": ["team-a-h100"]}])
	fixtures.rules(node_pools.deny) == {"gpu_pool_not_tenant"} with input as doc
}

test_allowed_cpu_workload_anywhere if {
	doc := json.patch(on_pools(null), [{"op": "replace", "path": "/workload/gpu/total", "value": 0}])
	count(node_pools.deny) == 0 with input as doc
}

tolerating(tolerations) := fixtures.patched([{"op": "replace", "path": "/workload/placement/tolerations", "value": tolerations}])

test_denied_tolerating_other_tenant_taint if {
	violations := node_pools.deny with input as tolerating([{"key": "guard.cnai.dev/tenant", "operator": "Equal", "value": "team-b"}])
	fixtures.rules(violations) == {"tolerates_other_tenant_pool"}
	some v in violations
	contains(v.message, `node pool "team-b-a100"`)
}

test_denied_tolerating_everything if {
	fixtures.rules(node_pools.deny) == {"tolerates_other_tenant_pool"} with input as tolerating([{"operator": "Exists"}])
}

test_allowed_other_tolerations if {
	count(node_pools.deny) == 0 with input as tolerating([
		{"key": "guard.cnai.dev/tenant", "operator": "Equal", "value": "team-a"},
		{"key": "guard.cnai.dev/tenant", "operator": "Exists", "effect": "NoExecute"},
		{"key": "nvidia.com/gpu", "operator": "Exists"},
	])
}

# A taint without a value is tolerated by an Equal toleration without one (both are ""):
# the input writes the missing value as null.
valueless_taint := json.patch(fixtures.base, [{"op": "replace", "path": "/cluster/nodePools/4/taints", "value": [{"key": "dedicated", "value": null, "effect": "NoSchedule"}]}])

test_denied_tolerating_a_valueless_taint if {
	doc := json.patch(valueless_taint, [{"op": "replace", "path": "/workload/placement/tolerations", "value": [{"key": "dedicated", "operator": "Equal"}]}])
	fixtures.rules(node_pools.deny) == {"tolerates_other_tenant_pool"} with input as doc
}

test_denied_tolerating_a_valueless_taint_with_an_empty_value if {
	doc := json.patch(valueless_taint, [{"op": "replace", "path": "/workload/placement/tolerations", "value": [{"key": "dedicated", "value": ""}]}])
	fixtures.rules(node_pools.deny) == {"tolerates_other_tenant_pool"} with input as doc
}

test_allowed_tolerating_another_value_of_a_valueless_taint if {
	doc := json.patch(valueless_taint, [{"op": "replace", "path": "/workload/placement/tolerations", "value": [{"key": "dedicated", "value": "team-a"}]}])
	count(node_pools.deny) == 0 with input as doc
}
