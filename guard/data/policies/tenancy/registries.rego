# Models only from the tenant's registry namespaces (tenant.registries: "registry/path" prefixes),
# and never from another tenant's.
package guard.tenancy.registries

import data.guard.lib.fmt

controls := ["NIST-AI-RMF GOVERN-6.1", "NIST-AI-RMF MAP-4.1", "ISO-42001 A.10.3"]

# name is one of the prefixes or under one ("registry/path" or "registry/path/..."): one
# definition, as regorus evaluates every definition of a function on each call.
under(name, prefixes) if {
	some p in prefixes
	startswith(concat("", [name, "/"]), concat("", [trim_suffix(p, "/"), "/"]))
}

# Refs of artifacts under the tenant's registries, and of those under another tenant's (with
# that tenant's name): rules, evaluated once per query.
own contains a.ref if {
	some a in input.artifacts
	under(a.name, input.tenant.registries)
}

foreign[a.ref] := t.name if {
	some a in input.artifacts
	not a.ref in own
	some t in input.otherTenants
	under(a.name, t.registries)
}

where(a) := sprintf("model %s (%s of %s)", [a.ref, a.source, concat(", ", a.usedBy)])

deny contains v if {
	input.tenant != null
	some a in input.artifacts
	a.isModel
	not a.ref in own
	not foreign[a.ref]
	v := {
		"rule": "model_registry_not_tenant",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: tenant %q takes models only from %s, found %s", [where(a), input.tenant.name, fmt.value(input.tenant.registries), a.name]),
	}
}

deny contains v if {
	input.tenant != null
	some a in input.artifacts
	owner := foreign[a.ref]
	v := {
		"rule": "cross_tenant_reference",
		"severity": "critical",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("artifact %s (%s of %s) belongs to tenant %q; tenant %q may not use it (expected one of %s)", [
			a.ref, a.source, concat(", ", a.usedBy), owner, input.tenant.name, fmt.value(input.tenant.registries),
		]),
	}
}
