# GPU requests must equal limits, so that the scheduler's view and the device plugin's agree.
package guard.gpu.requests_limits

import data.guard.lib.fmt

controls := ["CIS-K8s 5.7.1", "NIST-AI-RMF MANAGE-2.1"]

deny contains v if {
	some c in input.workload.containers
	some resource, requested in c.gpu.requests
	limit := object.get(c.gpu.limits, resource, null)
	requested != limit
	v := {
		"rule": "gpu_request_not_limit",
		"severity": "low",
		"controls": controls,
		"container": c.name,
		"message": sprintf("%s %q: %s request %s must equal its limit (found limit %s)", [c.type, c.name, resource, fmt.value(requested), fmt.value(limit)]),
	}
}
