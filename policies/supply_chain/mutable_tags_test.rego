package guard.supply_chain.mutable_tags_test

import data.guard.lib.fixtures
import data.guard.supply_chain.mutable_tags

tagged := fixtures.patched([
	{"op": "replace", "path": "/artifacts/1/digest", "value": null},
	{"op": "replace", "path": "/artifacts/1/tag", "value": "latest"},
])

test_allowed_digest_pinned if {
	count(mutable_tags.deny) == 0 with input as fixtures.base
}

test_denied_mutable_tag if {
	violations := mutable_tags.deny with input as tagged
	fixtures.rules(violations) == {"mutable_tag"}
	some v in violations
	contains(v.message, `found tag "latest"`)
}

test_warned_mutable_tag_in_warn_mode if {
	doc := json.patch(tagged, [{"op": "replace", "path": "/settings/mutableTags", "value": "warn"}])
	count(mutable_tags.deny) == 0 with input as doc
	fixtures.rules(mutable_tags.warn) == {"mutable_tag"} with input as doc
}
