# The model's licences and those of its training datasets must be in the tenant's allow-list
# (tenant.licenses, SPDX identifiers; without a tenant, settings.defaultLicenses).
package guard.provenance.licenses

import data.guard.lib.fmt

controls := ["NIST-AI-RMF GOVERN-6.1", "EU-AI-Act Art.53(1)(c)", "ISO-42001 A.10.3"]

allow_list := input.tenant.licenses if input.tenant != null
else := input.settings.defaultLicenses

owner := sprintf("tenant %q", [input.tenant.name]) if input.tenant != null
else := "the default allow-list"

where(a) := sprintf("model %s (%s of %s)", [a.ref, a.source, concat(", ", a.usedBy)])

deny contains v if {
	some a in input.artifacts
	a.isModel
	count(object.get(a, ["facts", "licenses"], [])) == 0
	v := {
		"rule": "license_undeclared",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: expected a declared licence in %s %s, found none", [where(a), owner, fmt.value(allow_list)]),
	}
}

deny contains v if {
	some a in input.artifacts
	a.isModel
	some l in a.facts.licenses
	not l in allow_list
	v := {
		"rule": "license_not_allowed",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: licence %q is not allowed for %s (expected one of %s)", [where(a), l, owner, fmt.value(allow_list)]),
	}
}

deny contains v if {
	some a in input.artifacts
	a.isModel
	some d in a.facts.datasets
	d.relation in {"trainedOn", "fineTunedOn"}
	some l in d.licenses
	not l in allow_list
	v := {
		"rule": "dataset_license_not_allowed",
		"severity": "medium",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: dataset %q has licence %q, not allowed for %s (expected one of %s)", [where(a), d.name, l, owner, fmt.value(allow_list)]),
	}
}
