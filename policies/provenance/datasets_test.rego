package guard.provenance.datasets_test

import data.guard.lib.fixtures
import data.guard.provenance.datasets

test_allowed_attested_approved_datasets if {
	count(datasets.deny) == 0 with input as fixtures.base
	count(datasets.warn) == 0 with input as fixtures.base
}

test_denied_dataset_attestation_missing if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/1/facts/attestations/1/status", "value": "missing"}])
	violations := datasets.deny with input as doc
	fixtures.rules(violations) == {"datasets_not_attested"}
	some v in violations
	contains(v.message, "found missing")
}

test_denied_model_without_facts if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/1/facts", "value": null}])
	fixtures.rules(datasets.deny) == {"datasets_not_attested"} with input as doc
}

test_denied_unapproved_dataset if {
	doc := fixtures.patched([
		{"op": "replace", "path": "/artifacts/1/facts/datasets/0/approved", "value": false},
		{"op": "replace", "path": "/artifacts/1/facts/datasets/0/approval", "value": null},
	])
	violations := datasets.deny with input as doc
	fixtures.rules(violations) == {"dataset_not_approved"}
	some v in violations
	contains(v.message, "support-tickets-2026")
}

test_denied_dataset_without_digest if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/1/facts/datasets/0/digests", "value": {}}])
	fixtures.rules(datasets.deny) == {"dataset_digest_missing"} with input as doc
}

test_allowed_unapproved_evaluation_dataset if {
	doc := fixtures.patched([
		{"op": "replace", "path": "/artifacts/1/facts/datasets/0/relation", "value": "evaluatedOn"},
		{"op": "replace", "path": "/artifacts/1/facts/datasets/0/approved", "value": false},
	])
	count(datasets.deny) == 0 with input as doc
	fixtures.rules(datasets.warn) == {"no_training_datasets"} with input as doc
}
