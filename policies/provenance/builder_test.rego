package guard.provenance.builder_test

import data.guard.lib.fixtures
import data.guard.provenance.builder

test_allowed_ci_builder if {
	count(builder.deny) == 0 with input as fixtures.base
}

test_denied_unknown_builder if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/1/facts/provenance/builder", "value": "https://laptop.example/alice"}])
	violations := builder.deny with input as doc
	fixtures.rules(violations) == {"builder_not_allowed"}
	some v in violations
	contains(v.message, "found https://laptop.example/alice")
}

test_denied_missing_provenance if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/1/facts/provenance", "value": {"builder": null, "sourceRepository": null}}])
	fixtures.rules(builder.deny) == {"builder_not_allowed", "source_repository_not_allowed"} with input as doc
}

test_denied_unknown_source if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/1/facts/provenance/sourceRepository", "value": "git+https://gitlab.com/x/y"}])
	fixtures.rules(builder.deny) == {"source_repository_not_allowed"} with input as doc
}

test_allowed_when_unrestricted if {
	doc := fixtures.patched([
		{"op": "replace", "path": "/settings/allowedBuilders", "value": []},
		{"op": "replace", "path": "/settings/allowedSourceRepositories", "value": []},
		{"op": "replace", "path": "/artifacts/1/facts/provenance/builder", "value": "anything"},
	])
	count(builder.deny) == 0 with input as doc
}
