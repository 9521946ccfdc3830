package guard.tenancy.isolation_test

import data.guard.lib.fixtures
import data.guard.tenancy.isolation

test_allowed_unprivileged if {
	count(isolation.deny) == 0 with input as fixtures.base
	count(isolation.warn) == 0 with input as fixtures.base
}

test_denied_privileged if {
	doc := fixtures.patched([{"op": "replace", "path": "/workload/containers/0/securityContext/privileged", "value": true}])
	violations := isolation.deny with input as doc
	fixtures.rules(violations) == {"privileged_container"}
	some v in violations
	v.container == "server"
}

test_denied_host_path if {
	doc := fixtures.patched([{"op": "add", "path": "/workload/volumes/-", "value": {"name": "cache", "type": "hostPath", "path": "/var/cache"}}])
	fixtures.rules(isolation.deny) == {"host_path_volume"} with input as doc
}

test_denied_host_network_and_pid if {
	doc := fixtures.patched([
		{"op": "replace", "path": "/workload/hostNetwork", "value": true},
		{"op": "replace", "path": "/workload/hostPID", "value": true},
	])
	violations := isolation.deny with input as doc
	count(violations) == 2
}

test_warned_privilege_escalation if {
	doc := fixtures.patched([{"op": "replace", "path": "/workload/containers/0/securityContext/allowPrivilegeEscalation", "value": null}])
	fixtures.rules(isolation.warn) == {"privilege_escalation"} with input as doc
}

test_allowed_non_ai_workload if {
	doc := fixtures.patched([
		{"op": "replace", "path": "/workload/ai", "value": false},
		{"op": "replace", "path": "/workload/hostNetwork", "value": true},
	])
	count(isolation.deny) == 0 with input as doc
}
