# Required attestations must be present and valid: those the matching trust rule lists
# (requiredAttestations: predicate types or short names such as "sbom", "provenance",
# "datasets"), and an SBOM for every model when settings.requireSbom is true.
package guard.supply_chain.attestations

controls := ["NIST-SSDF PS.3.2", "NIST-AI-RMF MAP-4.1", "EU-AI-Act Art.11", "ISO-42001 A.6.2.7"]

where(a) := sprintf("artifact %s (%s of %s)", [a.ref, a.source, concat(", ", a.usedBy)])

# Attestations of an artifact matching a requirement (predicate type or short name).
matching(a, req) := [att |
	some att in a.facts.attestations
	req in {att.predicateType, att.name}
]

# Per artifact, the predicate types and names of its valid attestations (a rule: evaluated once).
valid[a.ref] := {key |
	some att in a.facts.attestations
	att.status == "present"
	some key in [att.predicateType, att.name]
} if {
	some a in input.artifacts
}

present(a, req) if req in valid[a.ref]

found(a, req) := "none" if {
	count(matching(a, req)) == 0
} else := concat("; ", [s |
	some att in matching(a, req)
	s := sprintf("%s %s%s", [att.name, att.status, reason_suffix(att)])
])

reason_suffix(att) := sprintf(" (%s)", [att.reason]) if att.reason != null
else := ""

deny contains v if {
	some a in input.artifacts
	some req in a.requiredAttestations
	not present(a, req)
	v := {
		"rule": "required_attestation_missing",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: rule %q requires a valid %q attestation (found: %s)", [where(a), a.rule, req, found(a, req)]),
	}
}

# A valid attestation whose predicate type starts with an SBOM type: CycloneDX or SPDX (2, 3).
# One builtin call over a set literal: a loop over keys x types, or a constant rule holding the
# types, costs more with regorus 0.13 (which collects every solution of a loop).
sbom_present(a) if strings.any_prefix_match(valid[a.ref], {
	"https://cyclonedx.org/bom", "https://spdx.dev/Document", "https://spdx.dev/Document/v3",
})

deny contains v if {
	input.settings.requireSbom
	some a in input.artifacts
	a.isModel
	not sbom_present(a)
	v := {
		"rule": "sbom_missing",
		"severity": "medium",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: expected a valid CycloneDX or SPDX SBOM attestation for the model (found: %s)", [where(a), found(a, "sbom")]),
	}
}
