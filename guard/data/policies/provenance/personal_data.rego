# Datasets holding personal (or sensitive) data only for tenants allowed to use it, and then
# only with a declared lawful basis. A dataset that does not declare personalData is treated as
# possibly personal (absent knowledge is never assumed safe).
package guard.provenance.personal_data

import data.guard.lib.fmt

controls := ["EU-AI-Act Art.10(5)", "GDPR Art.6", "GDPR Art.9", "NIST-AI-RMF MEASURE-2.10"]

tenant_allows if input.tenant.personalData == true

tenant_name := input.tenant.name if input.tenant != null
else := "(no tenant)"

where(a) := sprintf("model %s (%s of %s)", [a.ref, a.source, concat(", ", a.usedBy)])

deny contains v if {
	some a in input.artifacts
	a.isModel
	not tenant_allows
	some d in a.facts.datasets
	d.personalData != false
	v := {
		"rule": "personal_data_not_allowed",
		"severity": "critical",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: dataset %q: tenant %s may not use personal data (expected personalData=false, found %s)", [where(a), d.name, tenant_name, fmt.value(d.personalData)]),
	}
}

deny contains v if {
	some a in input.artifacts
	a.isModel
	not tenant_allows
	some d in a.facts.datasets
	d.sensitiveData == true
	v := {
		"rule": "sensitive_data_not_allowed",
		"severity": "critical",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: dataset %q holds sensitive data; tenant %s may not use it (expected sensitiveData=false)", [where(a), d.name, tenant_name]),
	}
}

deny contains v if {
	some a in input.artifacts
	a.isModel
	tenant_allows
	some d in a.facts.datasets
	d.personalData != false
	d.consentBasis == null
	v := {
		"rule": "personal_data_without_basis",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: dataset %q may hold personal data (personalData=%s): expected a declared consentBasis, found none", [where(a), d.name, fmt.value(d.personalData)]),
	}
}
