package guard.gpu.requests_limits_test

import data.guard.gpu.requests_limits
import data.guard.lib.fixtures

test_allowed_equal if {
	count(requests_limits.deny) == 0 with input as fixtures.base
}

test_denied_request_below_limit if {
	doc := fixtures.patched([{"op": "replace", "path": "/workload/containers/0/gpu/limits", "value": {"nvidia.com/gpu": 2}}])
	violations := requests_limits.deny with input as doc
	fixtures.rules(violations) == {"gpu_request_not_limit"}
	some v in violations
	contains(v.message, "request 1 must equal its limit (found limit 2)")
}

test_allowed_limit_only if {
	doc := fixtures.patched([{"op": "replace", "path": "/workload/containers/0/gpu/requests", "value": {}}])
	count(requests_limits.deny) == 0 with input as doc
}
