package guard.supply_chain.registries_test

import data.guard.lib.fixtures
import data.guard.supply_chain.registries

test_allowed_registry if {
	count(registries.deny) == 0 with input as fixtures.base
}

test_denied_other_registry if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/0/name", "value": "docker.io/vllm/vllm-openai"}])
	violations := registries.deny with input as doc
	fixtures.rules(violations) == {"registry_not_allowed"}
	some v in violations
	contains(v.message, "found docker.io/vllm/vllm-openai")
}

test_denied_prefix_is_not_a_path_prefix if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/0/name", "value": "registry.example.com.evil.io/vllm"}])
	fixtures.rules(registries.deny) == {"registry_not_allowed"} with input as doc
}

test_allowed_no_restriction if {
	doc := fixtures.patched([
		{"op": "replace", "path": "/settings/allowedRegistries", "value": []},
		{"op": "replace", "path": "/artifacts/0/name", "value": "docker.io/vllm/vllm-openai"},
	])
	count(registries.deny) == 0 with input as doc
}
