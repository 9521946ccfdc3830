# Models only from the tenant's registry namespaces (tenant.registries: "registry/path" prefixes),
# and never from another tenant's.
package guard.tenancy.registries

controls := ["NIST-AI-RMF GOVERN-6.1", "NIST-AI-RMF MAP-4.1", "ISO-42001 A.10.3"]

under(name, prefixes) if {
	some p in prefixes
	name == trim_suffix(p, "/")
}

under(name, prefixes) if {
	some p in prefixes
	startswith(name, concat("", [trim_suffix(p, "/"), "/"]))
}

where(a) := sprintf("model %s (%s of %s)", [a.ref, a.source, concat(", ", a.usedBy)])

deny contains v if {
	input.tenant != null
	some a in input.artifacts
	a.isModel
	not under(a.name, input.tenant.registries)
	not cross_tenant(a)
	v := {
		"rule": "model_registry_not_tenant",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: tenant %q takes models only from %v, found %s", [where(a), input.tenant.name, input.tenant.registries, a.name]),
	}
}

cross_tenant(a) if {
	some t in input.otherTenants
	under(a.name, t.registries)
	not under(a.name, input.tenant.registries)
}

deny contains v if {
	input.tenant != null
	some a in input.artifacts
	some t in input.otherTenants
	under(a.name, t.registries)
	not under(a.name, input.tenant.registries)
	v := {
		"rule": "cross_tenant_reference",
		"severity": "critical",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("artifact %s (%s of %s) belongs to tenant %q; tenant %q may not use it (expected one of %v)", [
			a.ref, a.source, concat(", ", a.usedBy), t.name, input.tenant.name, input.tenant.registries,
		]),
	}
}
