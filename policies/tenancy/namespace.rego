# When tenants are configured, every AI workload (GPUs or model artifacts) runs in a namespace
# that belongs to a tenant.
package guard.tenancy.namespace

import data.guard.lib.fmt

controls := ["NIST-AI-RMF GOVERN-2.1", "ISO-42001 A.3.2"]

deny contains v if {
	input.tenant == null
	count(input.otherTenants) > 0
	input.workload.ai
	v := {
		"rule": "namespace_without_tenant",
		"severity": "high",
		"controls": controls,
		"message": sprintf("namespace %q belongs to no tenant (tenants: %s): AI workloads run only in tenant namespaces", [
			input.request.namespace, fmt.value([t.name | some t in input.otherTenants]),
		]),
	}
}
