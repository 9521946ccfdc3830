# MIG slices (nvidia.com/mig-<g>g.<mem>gb) only of profiles the tenant may use and the cluster knows.
package guard.gpu.mig

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
		"message": sprintf("%s %q requests MIG profile %q; expected one of %v", [c.type, c.name, profile, allowed_profiles]),
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
		"message": sprintf("%s %q requests MIG profile %q, which the cluster facts do not list (known: %v)", [c.type, c.name, profile, object.keys(input.cluster.migProfiles)]),
	}
}
