package guard.tenancy.sandbox_test

import data.guard.lib.fixtures
import data.guard.tenancy.sandbox

untrusted := fixtures.patched([
	{"op": "replace", "path": "/artifacts/1/verification/authorities", "value": ["vendor"]},
	{"op": "replace", "path": "/artifacts/1/verification/signers", "value": [{"method": "keyless", "identity": "release@vendor.example", "issuer": "https://accounts.google.com"}]},
])

test_allowed_tenant_signed_model if {
	count(sandbox.deny) == 0 with input as fixtures.base
}

test_denied_untrusted_model_without_sandbox if {
	violations := sandbox.deny with input as untrusted
	fixtures.rules(violations) == {"untrusted_model_unsandboxed"}
	some v in violations
	contains(v.message, "found null")
}

test_denied_untrusted_model_on_runc if {
	doc := json.patch(untrusted, [{"op": "replace", "path": "/workload/placement/runtimeClassName", "value": "runc"}])
	fixtures.rules(sandbox.deny) == {"untrusted_model_unsandboxed"} with input as doc
}

test_allowed_untrusted_model_in_gvisor if {
	doc := json.patch(untrusted, [{"op": "replace", "path": "/workload/placement/runtimeClassName", "value": "gvisor"}])
	count(sandbox.deny) == 0 with input as doc
}
