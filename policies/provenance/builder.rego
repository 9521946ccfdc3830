# The model was built by an allowed builder from an allowed source repository, as stated by
# verified provenance (settings.allowedBuilders / allowedSourceRepositories: globs, "*" matches
# anything, "/" included; an empty list does not restrict).
package guard.provenance.builder

import data.guard.lib.fmt

controls := ["SLSA-v1.0 Build-L2", "NIST-SSDF PS.3.1", "NIST-AI-RMF MAP-4.1"]

where(a) := sprintf("model %s (%s of %s)", [a.ref, a.source, concat(", ", a.usedBy)])

matches_any(patterns, value) if {
	some p in patterns
	glob.match(p, null, value)
}

deny contains v if {
	count(input.settings.allowedBuilders) > 0
	some a in input.artifacts
	a.isModel
	builder := object.get(a, ["facts", "provenance", "builder"], null)
	not matches_any(input.settings.allowedBuilders, value_or_empty(builder))
	v := {
		"rule": "builder_not_allowed",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: expected a builder matching %s, found %s", [where(a), fmt.value(input.settings.allowedBuilders), fmt.value(builder)]),
	}
}

deny contains v if {
	count(input.settings.allowedSourceRepositories) > 0
	some a in input.artifacts
	a.isModel
	repo := object.get(a, ["facts", "provenance", "sourceRepository"], null)
	not matches_any(input.settings.allowedSourceRepositories, value_or_empty(repo))
	v := {
		"rule": "source_repository_not_allowed",
		"severity": "high",
		"controls": controls,
		"artifact": a.ref,
		"message": sprintf("%s: expected a source repository matching %s, found %s", [where(a), fmt.value(input.settings.allowedSourceRepositories), fmt.value(repo)]),
	}
}

value_or_empty(x) := x if is_string(x)
else := ""
