package guard.lib.identity_test

import data.guard.lib.identity

tenant := {"authorities": ["a"], "identities": [
	{"issuer": "https://issuer", "subject": "alice@example.com", "subjectRegex": null, "keyFingerprint": null},
	{"issuer": "https://issuer", "subject": null, "subjectRegex": "bot-[0-9]+@example\\.com", "keyFingerprint": null},
]}

art(status, authorities, signers) := {"verification": {"status": status, "authorities": authorities, "signers": signers}}

test_by_authority if identity.signed_by_tenant(art("verified", ["a"], []), tenant)

test_by_subject if identity.signed_by_tenant(art("verified", [], [{"method": "keyless", "identity": "alice@example.com", "issuer": "https://issuer"}]), tenant)

test_by_regex if identity.signed_by_tenant(art("verified", [], [{"method": "keyless", "identity": "bot-7@example.com", "issuer": "https://issuer"}]), tenant)

test_regex_anchored if not identity.signed_by_tenant(art("verified", [], [{"method": "keyless", "identity": "xbot-7@example.com.evil", "issuer": "https://issuer"}]), tenant)

test_not_when_unverified if not identity.signed_by_tenant(art("failed", ["a"], []), tenant)
