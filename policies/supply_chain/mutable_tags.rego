# Artifacts must be pinned by digest: a tag can be moved to other bytes after verification.
# settings.mutableTags chooses deny (default) or warn.
package guard.supply_chain.mutable_tags

controls := ["NIST-SSDF PS.2.1", "NIST-AI-RMF MANAGE-3.2", "SLSA-v1.0 Build-L2"]

non_oci(a) if a.scheme != "oci"

mutable contains v if {
	some a in input.artifacts
	not non_oci(a) # model sources that are not OCI: supply_chain.model_sources
	a.digest == null
	v := {
		"rule": "mutable_tag",
		"severity": "medium",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("artifact %s (%s of %s): expected a reference pinned by digest (@sha256:...), found tag %q", [
			a.ref, a.source, concat(", ", a.usedBy), a.tag,
		]),
	}
}

deny contains v if {
	input.settings.mutableTags == "deny"
	some v in mutable
}

warn contains v if {
	input.settings.mutableTags == "warn"
	some v in mutable
}
