package guard.tenancy.signers_test

import data.guard.lib.fixtures
import data.guard.tenancy.signers

signed(authorities, signers) := fixtures.patched([
	{"op": "replace", "path": "/artifacts/1/verification/authorities", "value": authorities},
	{"op": "replace", "path": "/artifacts/1/verification/signers", "value": signers},
])

ci := {"method": "keyless", "identity": "https://github.com/example/ml-pipelines/.github/workflows/x.yml@refs/heads/main", "issuer": "https://token.actions.githubusercontent.com"}

test_allowed_tenant_authority if {
	count(signers.deny) == 0 with input as fixtures.base
}

test_allowed_tenant_identity_regex if {
	count(signers.deny) == 0 with input as signed(["vendor"], [ci])
}

test_denied_identity_regex_is_anchored if {
	other := object.union(ci, {"identity": "https://evil.example/https://github.com/example/ml-pipelines/x"})
	fixtures.rules(signers.deny) == {"model_not_signed_by_tenant"} with input as signed(["vendor"], [other])
}

test_denied_wrong_issuer if {
	other := object.union(ci, {"issuer": "https://accounts.google.com"})
	fixtures.rules(signers.deny) == {"model_not_signed_by_tenant"} with input as signed(["vendor"], [other])
}

test_denied_vendor_signed if {
	vendor := {"method": "keyless", "identity": "release@vendor.example", "issuer": "https://accounts.google.com"}
	violations := signers.deny with input as signed(["vendor"], [vendor])
	fixtures.rules(violations) == {"model_not_signed_by_tenant"}
	some v in violations
	contains(v.message, "release@vendor.example")
}

test_denied_unverified_even_by_tenant_identity if {
	doc := json.patch(fixtures.base, [{"op": "replace", "path": "/artifacts/1/verification/status", "value": "failed"}])
	fixtures.rules(signers.deny) == {"model_not_signed_by_tenant"} with input as doc
}

test_allowed_key_fingerprint if {
	fp := "sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
	doc := json.patch(signed([], [{"method": "key", "identity": fp, "issuer": null}]), [{"op": "replace", "path": "/tenant/identities", "value": [{"issuer": null, "subject": null, "subjectRegex": null, "keyFingerprint": fp}]}])
	count(signers.deny) == 0 with input as doc
}
