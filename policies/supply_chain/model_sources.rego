# Every model source guard cannot verify is denied unless the platform allows it explicitly.
#
# guard verifies OCI artifacts (images, oci://, oci+native://, oci+fetch://, kit:// models). Every
# other way a model reaches a pod (a storageUri or storageUris[] entry, a KServe storage spec, env
# STORAGE_URI / MODEL_ID, vLLM / TGI / SGLang --model arguments, a storage-initializer, a path into
# a PVC, a ConfigMap value, ...) reaches this policy as an artifact whose scheme is not "oci", with
# the field paths it was found at. It is denied unless a prefix of settings.allowedModelSources
# (config policy.allowed_model_sources) allows it; guard computes that match once, in
# guard.policy.sources, and hands it over as allowedSource. An allowed Hugging Face source that
# is not pinned to a commit warns: the Hub serves whatever the branch points at when the pod starts.
package guard.supply_chain.model_sources

controls := ["NIST-SSDF PS.2.1", "NIST-AI-RMF MANAGE-3.2", "EU-AI-Act Art.15", "SLSA-v1.0 Build-L2"]

where(a) := sprintf("model source %s (%s at %s)", [a.ref, a.source, concat(", ", a.locations)])

unverifiable(a) if {
	a.scheme != "oci"
	a.allowedSource == null
}

pinned(a) if {
	is_string(a.tag) # regorus: a builtin on null is an error
	regex.match(`^[0-9a-f]{40}$`, a.tag)
}

deny contains v if {
	some a in input.artifacts
	unverifiable(a)
	v := {
		"rule": "unverified_model_source",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: expected a signed OCI artifact (oci://) or a source allowed by policy.allowed_model_sources %s, found a %s:// source guard cannot verify", [
			where(a), data.guard.lib.fmt.value(input.settings.allowedModelSources), a.scheme,
		]),
	}
}

warn contains v if {
	some a in input.artifacts
	a.scheme == "hf"
	a.allowedSource != null
	not pinned(a)
	v := {
		"rule": "unpinned_hf_model",
		"severity": "medium",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: expected a Hugging Face revision pinned to a commit (hf://<org>/<model>:<40-hex commit>), found revision %s", [
			where(a), data.guard.lib.fmt.value(a.tag),
		]),
	}
}
