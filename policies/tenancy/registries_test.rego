package guard.tenancy.registries_test

import data.guard.lib.fixtures
import data.guard.tenancy.registries

model_from(name) := fixtures.patched([{"op": "replace", "path": "/artifacts/1/name", "value": name}])

test_allowed_own_registry if {
	count(registries.deny) == 0 with input as fixtures.base
}

test_denied_other_registry if {
	violations := registries.deny with input as model_from("registry.example.com/shared/mistral-7b")
	fixtures.rules(violations) == {"model_registry_not_tenant"}
}

test_denied_cross_tenant if {
	violations := registries.deny with input as model_from("registry.example.com/team-b/secret")
	fixtures.rules(violations) == {"cross_tenant_reference"}
	some v in violations
	contains(v.message, `belongs to tenant "team-b"`)
}

test_denied_sibling_prefix_is_not_own if {
	fixtures.rules(registries.deny) == {"model_registry_not_tenant"} with input as model_from("registry.example.com/team-abc/m")
}

test_cross_tenant_applies_to_images_too if {
	doc := fixtures.patched([{"op": "replace", "path": "/artifacts/0/name", "value": "registry.example.com/team-b/tools"}])
	fixtures.rules(registries.deny) == {"cross_tenant_reference"} with input as doc
}
