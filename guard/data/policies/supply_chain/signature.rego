# Artifacts must be signed by an authority the config trusts for the namespace.
#
# The webhook verifies every artifact against the most specific rule for it in the request's
# namespace and reports the outcome in input.artifacts[_].verification. This policy turns any
# outcome other than "verified under the rule that applies here" into a violation: verification
# failed, could not run (fail closed), or no rule covers the artifact (settings.unmatchedArtifacts).
# Model sources that are not OCI artifacts cannot carry a signature: supply_chain.model_sources
# judges them.
package guard.supply_chain.signature

import data.guard.lib.fmt

controls := ["NIST-SSDF PS.2.1", "NIST-AI-RMF MANAGE-3.2", "EU-AI-Act Art.15", "CIS-K8s 5.5.1"]

where(a) := sprintf("artifact %s (%s of %s)", [a.ref, a.source, concat(", ", a.usedBy)])

# an input without scheme (before guard read model sources) holds OCI artifacts only
non_oci(a) if a.scheme != "oci"

oci_artifacts contains a if {
	some a in input.artifacts
	not non_oci(a)
}

deny contains v if {
	some a in oci_artifacts
	a.verification.status == "failed"
	v := {
		"rule": "signature_invalid",
		"severity": "critical",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: verification under rule %q failed (expected a valid signature by %s, found: %s)", [
			where(a), a.rule, fmt.value(a.verification.authorities), a.verification.reason,
		]),
	}
}

deny contains v if {
	some a in oci_artifacts
	a.verification.status == "error"
	not a.verification.failOpen
	v := {
		"rule": "verification_error",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: could not be verified, denied (fail closed): %s", [where(a), a.verification.reason]),
	}
}

# The artifact's trust rule fails open (admission.fail_open_rules) and the registry could not be
# reached in time: admitted unverified, and said so.
warn contains v if {
	some a in input.artifacts
	a.verification.status == "error"
	a.verification.failOpen
	v := {
		"rule": "verification_error",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: could not be verified, admitted UNVERIFIED because its rule fails open: %s", [where(a), a.verification.reason]),
	}
}

deny contains v if {
	some a in oci_artifacts
	a.verification.status == "verified"
	a.rule != a.verification.rule
	v := {
		"rule": "verified_under_other_rule",
		"severity": "critical",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: verified under rule %q, but rule %q applies in namespace %q", [
			where(a), a.verification.rule, a.rule, input.request.namespace,
		]),
	}
}

unmatched contains v if {
	some a in oci_artifacts
	a.verification.status == "unmatched"
	v := {
		"rule": "no_trust_rule",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: no trust rule covers it in namespace %q (expected a rule in the config's rules; unmatched artifacts: %s)", [
			where(a), input.request.namespace, input.settings.unmatchedArtifacts,
		]),
	}
}

deny contains v if {
	input.settings.unmatchedArtifacts == "deny"
	some v in unmatched
}

warn contains v if {
	input.settings.unmatchedArtifacts == "warn"
	some v in unmatched
}
