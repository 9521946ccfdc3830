# DRA resource claims must be resolvable (guard reads the ResourceClaim or template to count
# the devices) and GPU requests must be bounded (allocationMode All takes every matching device).
# Resolved GPU devices count towards the quota in guard.gpu.quota.
package guard.gpu.dra

import data.guard.lib.fmt

controls := ["NIST-AI-RMF GOVERN-1.4", "CIS-K8s 5.7.1"]

deny contains v if {
	some claim in input.workload.resourceClaims
	not claim.resolved
	v := {
		"rule": "claim_unresolved",
		"severity": "medium",
		"controls": controls,
		"message": sprintf("resource claim %q (claim %s, template %s) could not be resolved: guard cannot count its devices (fail closed)", [
			claim.name, fmt.value(claim.resourceClaimName), fmt.value(claim.resourceClaimTemplateName),
		]),
	}
}

deny contains v if {
	some claim in input.workload.resourceClaims
	some d in claim.devices
	d.gpu
	d.allocationMode == "All"
	v := {
		"rule": "claim_unbounded",
		"severity": "medium",
		"controls": controls,
		"message": sprintf("resource claim %q request %q asks for all devices of class %q: expected allocationMode ExactCount with a count", [
			claim.name, d.request, d.deviceClassName,
		]),
	}
}

deny contains v if {
	some c in input.workload.containers
	some name in c.claims
	not name in {claim.name | some claim in input.workload.resourceClaims}
	v := {
		"rule": "claim_undeclared",
		"severity": "medium",
		"controls": controls,
		"container": c.name,
		"message": sprintf("%s %q uses resource claim %q, which the pod does not declare in spec.resourceClaims", [c.type, c.name, name]),
	}
}
