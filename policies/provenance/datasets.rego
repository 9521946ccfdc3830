# Every dataset a model was trained or fine-tuned on must be attested (a valid dataset
# provenance attestation, with the dataset's digest) and approved by data governance.
package guard.provenance.datasets

import data.guard.lib.fmt

controls := ["EU-AI-Act Art.10", "NIST-AI-RMF MAP-4.1", "ISO-42001 A.7.5"]

# The training relations, {"trainedOn", "fineTunedOn"}, are written out where used: a set literal
# costs nothing, a constant rule ~4 us per query with regorus 0.13.

where(a) := sprintf("model %s (%s of %s)", [a.ref, a.source, concat(", ", a.usedBy)])

attested contains a.ref if {
	some a in input.artifacts
	some att in a.facts.attestations
	att.name == "datasets"
	att.status == "present"
}

attestation_state(a) := concat("; ", [s |
	some att in a.facts.attestations
	att.name == "datasets"
	s := sprintf("%s%s", [att.status, suffix(att.reason)])
])

suffix(r) := sprintf(" (%s)", [r]) if r != null
else := ""

deny contains v if {
	some a in input.artifacts
	a.isModel
	not a.ref in attested
	state := attestation_state(a)
	v := {
		"rule": "datasets_not_attested",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: expected a valid dataset provenance attestation, found %s", [where(a), found_text(state)]),
	}
}

found_text(s) := "none" if s == ""
else := s

deny contains v if {
	some a in input.artifacts
	a.isModel
	some d in a.facts.datasets
	d.relation in {"trainedOn", "fineTunedOn"}
	count(object.keys(d.digests)) == 0
	v := {
		"rule": "dataset_digest_missing",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: dataset %q (%s): expected a content digest binding the attested data, found none", [where(a), d.name, d.relation]),
	}
}

deny contains v if {
	some a in input.artifacts
	a.isModel
	some d in a.facts.datasets
	d.relation in {"trainedOn", "fineTunedOn"}
	not approved(d)
	v := {
		"rule": "dataset_not_approved",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: dataset %q (%s): expected an approval by data governance, found approved=%s approval=%s", [
			where(a), d.name, d.relation, fmt.value(d.approved), fmt.value(d.approval),
		]),
	}
}

approved(d) if {
	d.approved == true
	d.approval != null
}

warn contains v if {
	some a in input.artifacts
	a.isModel
	a.ref in attested
	count([d | some d in a.facts.datasets; d.relation in {"trainedOn", "fineTunedOn"}]) == 0
	v := {
		"rule": "no_training_datasets",
		"severity": "low",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: the dataset attestation names no training or fine-tuning dataset", [where(a)]),
	}
}
