package guard.supply_chain.attestations_test

import data.guard.lib.fixtures
import data.guard.supply_chain.attestations

test_allowed_all_attestations_present if {
	count(attestations.deny) == 0 with input as fixtures.base
}

test_denied_required_attestation_invalid if {
	doc := fixtures.patched([
		{"op": "replace", "path": "/artifacts/1/facts/attestations/1/status", "value": "invalid"},
		{"op": "replace", "path": "/artifacts/1/facts/attestations/1/reason", "value": "subject is another model"},
	])
	violations := attestations.deny with input as doc
	fixtures.rules(violations) == {"required_attestation_missing"}
	some v in violations
	contains(v.message, "datasets invalid (subject is another model)")
}

test_denied_required_attestation_absent if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/1/requiredAttestations", "value": ["https://slsa.dev/verification_summary/v1"]}])
	violations := attestations.deny with input as doc
	some v in violations
	v.rule == "required_attestation_missing"
	contains(v.message, "found: none")
}

test_denied_model_without_sbom if {
	doc := fixtures.patched([
		{"op": "remove", "path": "/artifacts/1/facts/attestations/0"},
		{"op": "replace", "path": "/artifacts/1/requiredAttestations", "value": []},
	])
	fixtures.rules(attestations.deny) == {"sbom_missing"} with input as doc
}

test_denied_model_without_facts if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/1/facts", "value": null}])
	fixtures.rules(attestations.deny) == {"sbom_missing", "required_attestation_missing"} with input as doc
}

test_allowed_sbom_not_required if {
	doc := fixtures.patched([
		{"op": "remove", "path": "/artifacts/1/facts/attestations/0"},
		{"op": "replace", "path": "/artifacts/1/requiredAttestations", "value": []},
		{"op": "replace", "path": "/settings/requireSbom", "value": false},
	])
	count(attestations.deny) == 0 with input as doc
}

test_allowed_spdx_sbom if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/1/facts/attestations/0/predicateType", "value": "https://spdx.dev/Document/v3"}])
	count(attestations.deny) == 0 with input as doc
}
