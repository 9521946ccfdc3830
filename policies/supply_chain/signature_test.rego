package guard.supply_chain.signature_test

import data.guard.lib.fixtures
import data.guard.supply_chain.signature

model_status(status, reason) := fixtures.patched([
	{"op": "replace", "path": "/artifacts/1/verification/status", "value": status},
	{"op": "replace", "path": "/artifacts/1/verification/reason", "value": reason},
])

test_allowed_verified_artifacts if {
	count(signature.deny) == 0 with input as fixtures.base
	count(signature.warn) == 0 with input as fixtures.base
}

test_denied_invalid_signature if {
	violations := signature.deny with input as model_status("failed", "signature does not verify")
	fixtures.rules(violations) == {"signature_invalid"}
	some v in violations
	contains(v.message, "llama-3-8b")
	contains(v.message, "signature does not verify")
	v.severity == "critical"
}

test_denied_verification_error_fails_closed if {
	violations := signature.deny with input as model_status("error", "registry unreachable")
	fixtures.rules(violations) == {"verification_error"}
}

test_warned_verification_error_under_a_fail_open_rule if {
	doc := json.patch(model_status("error", "registry unreachable"), [{"op": "add", "path": "/artifacts/1/verification/failOpen", "value": true}])
	count(signature.deny) == 0 with input as doc
	fixtures.rules(signature.warn) == {"verification_error"} with input as doc
}

test_denied_unmatched_by_default if {
	violations := signature.deny with input as model_status("unmatched", null)
	fixtures.rules(violations) == {"no_trust_rule"}
}

test_warned_unmatched_in_warn_mode if {
	doc := json.patch(model_status("unmatched", null), [{"op": "replace", "path": "/settings/unmatchedArtifacts", "value": "warn"}])
	count(signature.deny) == 0 with input as doc
	fixtures.rules(signature.warn) == {"no_trust_rule"} with input as doc
}

test_allowed_unmatched_in_allow_mode if {
	doc := json.patch(model_status("unmatched", null), [{"op": "replace", "path": "/settings/unmatchedArtifacts", "value": "allow"}])
	count(signature.deny) == 0 with input as doc
	count(signature.warn) == 0 with input as doc
}

test_denied_verified_under_another_rule if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/1/verification/rule", "value": "shared-models"}])
	fixtures.rules(signature.deny) == {"verified_under_other_rule"} with input as doc
}
