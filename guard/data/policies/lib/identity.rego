# Shared helper: is an artifact signed by one of a tenant's identities or authorities?
package guard.lib.identity

# The refs of the input's model artifacts signed by the input's tenant. A rule (evaluated once per
# query and shared by every policy that reads it), where a function would be re-evaluated per call.
tenant_signed contains a.ref if {
	some a in input.artifacts
	a.isModel
	signed_by_tenant(a, input.tenant)
}

# Verified under one of the tenant's authorities, else signed by one of its identities. Else
# chains, not alternative definitions: regorus evaluates every definition of a function on each
# call, an else branch only when the branches before it are undefined (tenant_signed: 36 -> 15 us).
signed_by_tenant(a, tenant) := true if {
	a.verification.status == "verified"
	some auth in a.verification.authorities
	auth in tenant.authorities
} else := true if {
	a.verification.status == "verified"
	some s in a.verification.signers
	some id in tenant.identities
	matches(s, id)
}

matches(s, id) := true if {
	id.keyFingerprint != null
	s.method == "key"
	s.identity == id.keyFingerprint
} else := true if {
	id.subject != null
	s.issuer == id.issuer
	s.identity == id.subject
} else := true if {
	id.subjectRegex != null
	s.issuer == id.issuer
	regex.match(concat("", ["^(?:", id.subjectRegex, ")$"]), s.identity)
}

describe(ids) := [text |
	some id in ids
	text := one(id)
]

one(id) := id.keyFingerprint if object.get(id, "keyFingerprint", null) != null
else := sprintf("%s %s", [id.method, id.identity]) if object.get(id, "method", null) != null
else := sprintf("%s@%s", [object.get(id, "subject", null), id.issuer]) if object.get(id, "subject", null) != null
else := sprintf("~%s@%s", [id.subjectRegex, id.issuer])
