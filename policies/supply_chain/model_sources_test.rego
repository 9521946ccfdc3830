package guard.supply_chain.model_sources_test

import data.guard.lib.fixtures
import data.guard.supply_chain.model_sources

source(ref, scheme, allowed) := fixtures.patched([{"op": "add", "path": "/artifacts/-", "value": {
	"ref": ref, "scheme": scheme, "allowedSource": allowed, "source": "declared", "usedBy": ["server"],
	"locations": ["spec.template.spec.containers[0].env[0].value"], "isModel": true,
	"name": ref, "registry": "", "repository": "", "tag": tag_of(ref), "digest": null, "rule": null,
	"requiredAttestations": [], "facts": null,
	"verification": {"status": "unmatched", "reason": null, "rule": null, "authorities": [], "signers": []},
}}])

tag_of(ref) := t if {
	parts := split(ref, ":")
	count(parts) == 3
	t := parts[2]
} else := null

test_allowed_oci_artifacts_only if {
	count(model_sources.deny) == 0 with input as fixtures.base
	count(model_sources.warn) == 0 with input as fixtures.base
}

test_denied_s3_storage_uri if {
	violations := model_sources.deny with input as source("s3://models/llama", "s3", null)
	fixtures.rules(violations) == {"unverified_model_source"}
	some v in violations
	contains(v.message, "s3://models/llama")
	contains(v.message, "spec.template.spec.containers[0].env[0].value")
	contains(v.message, "found a s3:// source")
}

test_denied_storage_spec_without_uri if {
	doc := source("kserve-storage://localMinIO/models/llama", "kserve-storage", null)
	fixtures.rules(model_sources.deny) == {"unverified_model_source"} with input as doc
}

test_allowed_by_prefix if {
	doc := source("s3://models/llama", "s3", "s3://models/")
	count(model_sources.deny) == 0 with input as doc
	count(model_sources.warn) == 0 with input as doc
}

test_warn_unpinned_allowed_hf if {
	doc := source("hf://meta-llama/Llama-3-8B", "hf", "hf://")
	count(model_sources.deny) == 0 with input as doc
	fixtures.rules(model_sources.warn) == {"unpinned_hf_model"} with input as doc
}

test_allowed_pinned_hf if {
	doc := source("hf://meta-llama/Llama-3-8B:0123456789abcdef0123456789abcdef01234567", "hf", "hf://")
	count(model_sources.warn) == 0 with input as doc
}

test_denied_unpinned_hf_not_allowed if {
	doc := source("hf://meta-llama/Llama-3-8B", "hf", null)
	fixtures.rules(model_sources.deny) == {"unverified_model_source"} with input as doc
}
