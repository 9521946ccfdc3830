# AI workloads (GPUs or models) get no privileged containers, hostPath volumes or host
# namespaces: a model server holding another tenant's GPU memory or weights one step away.
package guard.tenancy.isolation

import data.guard.lib.fmt

controls := ["PSS-Baseline", "CIS-K8s 5.2.2", "CIS-K8s 5.2.3", "CIS-K8s 5.2.4", "CIS-K8s 5.2.5"]

deny contains v if {
	input.workload.ai
	some c in input.workload.containers
	c.securityContext.privileged
	v := {
		"rule": "privileged_container",
		"severity": "critical",
		"controls": controls,
		"container": c.name,
		"message": sprintf("%s %q: expected securityContext.privileged false for an AI workload, found true", [c.type, c.name]),
	}
}

deny contains v if {
	input.workload.ai
	some vol in input.workload.volumes
	vol.type == "hostPath"
	v := {
		"rule": "host_path_volume",
		"severity": "high",
		"controls": controls,
		"message": sprintf("volume %q mounts host path %q: expected no hostPath volumes in an AI workload", [vol.name, vol.path]),
	}
}

# The host namespaces the pod shares, each field named (input.workload[field] over a list
# would read the whole workload, its name included, and keep the template cache from this rule).
host_namespaces contains field if {
	some field, on in {
		"hostNetwork": object.get(input, ["workload", "hostNetwork"], false),
		"hostPID": object.get(input, ["workload", "hostPID"], false),
		"hostIPC": object.get(input, ["workload", "hostIPC"], false),
	}
	on != false
}

deny contains v if {
	input.workload.ai
	some field in host_namespaces
	v := {
		"rule": "host_namespace",
		"severity": "high",
		"controls": controls,
		"message": sprintf("%s %q: expected %s false for an AI workload, found true", [input.workload.kind, input.workload.name, field]),
	}
}

warn contains v if {
	input.workload.ai
	some c in input.workload.containers
	c.securityContext.allowPrivilegeEscalation != false
	v := {
		"rule": "privilege_escalation",
		"severity": "low",
		"controls": ["PSS-Restricted", "CIS-K8s 5.2.6"],
		"container": c.name,
		"message": sprintf("%s %q: set securityContext.allowPrivilegeEscalation to false (found %s)", [c.type, c.name, fmt.value(c.securityContext.allowPrivilegeEscalation)]),
	}
}
