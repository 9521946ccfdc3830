package guard.gpu.sharing_test

import data.guard.gpu.sharing
import data.guard.lib.fixtures

shared_on(pools) := fixtures.patched([
	{"op": "replace", "path": "/workload/containers/0/gpu/shared", "value": true},
	{"op": "replace", "path": "/workload/placement/nodePools", "value": pools},
])

test_allowed_exclusive_gpu if {
	count(sharing.deny) == 0 with input as fixtures.base
}

test_allowed_dedicated_time_sliced_pool if {
	count(sharing.deny) == 0 with input as shared_on(["team-a-shared"])
}

test_denied_tenant_without_sharing if {
	doc := json.patch(shared_on(["team-a-shared"]), [{"op": "replace", "path": "/tenant/gpu/allowShared", "value": false}])
	fixtures.rules(sharing.deny) == {"shared_gpu_not_allowed"} with input as doc
}

test_denied_unpinned if {
	fixtures.rules(sharing.deny) == {"shared_gpu_unpinned"} with input as shared_on(null)
}

test_denied_pool_shared_across_tenants if {
	violations := sharing.deny with input as shared_on(["team-a-shared", "shared-mig"])
	fixtures.rules(violations) == {"shared_gpu_cross_tenant"}
	some v in violations
	contains(v.message, `"shared-mig"`)
}

whole_on(pools) := fixtures.patched([{"op": "replace", "path": "/workload/placement/nodePools", "value": pools}])

test_allowed_whole_gpu_on_dedicated_time_sliced_pool if {
	count(sharing.deny) == 0 with input as whole_on(["team-a-shared"])
}

test_denied_whole_gpu_on_time_sliced_pool_without_sharing if {
	doc := json.patch(whole_on(["team-a-shared"]), [{"op": "replace", "path": "/tenant/gpu/allowShared", "value": false}])
	violations := sharing.deny with input as doc
	fixtures.rules(violations) == {"shared_gpu_not_allowed"}
	some v in violations
	contains(v.message, `["team-a-shared"]`)
}

test_denied_whole_gpu_on_time_sliced_pool_of_no_tenant if {
	doc := json.patch(whole_on(["shared-mig"]), [{"op": "replace", "path": "/cluster/nodePools/3/sharing", "value": "time-sliced"}])
	fixtures.rules(sharing.deny) == {"shared_gpu_cross_tenant"} with input as doc
}

test_allowed_whole_gpu_on_exclusive_and_mig_pools if {
	count(sharing.deny) == 0 with input as whole_on(["team-a-h100", "shared-mig"])
}
