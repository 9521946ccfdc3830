# MIG slices (nvidia.com/mig-<g>g.<mem>gb) only of profiles the tenant may use and the cluster knows.
# A DRA claim's MIG devices (device class mig.nvidia.com) name their profile in CEL selectors
# guard does not read: they are refused for a tenant that may use no MIG profile at all.
package guard.gpu.mig

import data.guard.lib.fmt

controls := ["NIST-AI-RMF GOVERN-1.4"]

allowed_profiles := input.tenant.gpu.migProfiles if input.tenant != null
else := []

deny contains v if {
	some c in input.workload.containers
	some profile in c.gpu.migProfiles
	not profile in allowed_profiles
	v := {
		"rule": "mig_profile_not_allowed",
		"severity": "medium",
		"controls": controls,
		"container": c.name,
		"message": sprintf("%s %q requests MIG profile %q; expected one of %s", [c.type, c.name, profile, fmt.value(allowed_profiles)]),
	}
}

deny contains v if {
	some c in input.workload.containers
	some profile in c.gpu.migProfiles
	not input.cluster.migProfiles[profile]
	v := {
		"rule": "mig_profile_unknown",
		"severity": "medium",
		"controls": controls,
		"container": c.name,
		"message": sprintf("%s %q requests MIG profile %q, which the cluster facts do not list (known: %s)", [c.type, c.name, profile, fmt.value(object.keys(input.cluster.migProfiles))]),
	}
}

deny contains v if {
	count(allowed_profiles) == 0
	some claim in input.workload.resourceClaims # first: most pods have none
	some d in claim.devices
	d.deviceClassName == "mig.nvidia.com"
	v := {
		"rule": "mig_profile_not_allowed",
		"severity": "medium",
		"controls": controls,
		"message": sprintf("resource claim %q request %q asks for MIG devices (class %q); tenant %s may use no MIG profile", [
			claim.name, d.request, d.deviceClassName, tenant_name,
		]),
	}
}

tenant_name := sprintf("%q", [input.tenant.name]) if input.tenant != null
else := "(none)"
