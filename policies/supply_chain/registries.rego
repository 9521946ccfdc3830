# Artifacts only from the registries / repositories the platform allows
# (settings.allowedRegistries: prefixes such as "registry.example.com/models"; empty: any).
package guard.supply_chain.registries

import data.guard.lib.fmt

controls := ["NIST-SSDF PW.4.1", "NIST-AI-RMF GOVERN-6.1", "CIS-K8s 5.5.1"]

# name is a prefix or under it ("registry/path" or "registry/path/..."): one definition, as
# regorus evaluates every definition of a function on each call.
allowed(name) if {
	some p in input.settings.allowedRegistries
	startswith(concat("", [name, "/"]), concat("", [trim_suffix(p, "/"), "/"]))
}

non_oci(a) if a.scheme != "oci"

deny contains v if {
	count(input.settings.allowedRegistries) > 0
	some a in input.artifacts
	not allowed(a.name)
	not non_oci(a) # model sources that are not OCI: supply_chain.model_sources
	v := {
		"rule": "registry_not_allowed",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("artifact %s (%s of %s): expected a repository under one of %s, found %s", [
			a.ref, a.source, concat(", ", a.usedBy), fmt.value(input.settings.allowedRegistries), a.name,
		]),
	}
}
