{{- /* selfVerify: the authority and rule that make guard verify guard's own image (values.yaml,
       selfVerify). Called by guard.config with (dict "config" $config "root" .); sets them in
       $config in place. */ -}}
{{- define "guard.selfVerify" -}}
{{- $values := .root.Values.selfVerify | default dict -}}
{{- if $values.enabled -}}
{{- $paths := include "guard.paths" .root | fromJson -}}
{{- $keyless := $values.keyless | default dict -}}
{{- $authority := dict -}}
{{- if $values.publicKeyFile -}}
{{- if $keyless.issuer -}}
{{- fail "selfVerify: give publicKeyFile or keyless, not both" -}}
{{- end -}}
{{- if not (hasKey (.root.Values.trustFiles | default dict) $values.publicKeyFile) -}}
{{- fail (printf "selfVerify.publicKeyFile %q is not a key of trustFiles: put guard's release public key there" $values.publicKeyFile) -}}
{{- end -}}
{{- $authority = dict "kind" "key" "key" (printf "%s/%s" $paths.trust $values.publicKeyFile) -}}
{{- else if $keyless.issuer -}}
{{- if eq (empty $keyless.identity) (empty $keyless.identityRegex) -}}
{{- fail "selfVerify.keyless: give exactly one of identity or identityRegex" -}}
{{- end -}}
{{- $authority = dict "kind" "keyless" "issuer" $keyless.issuer -}}
{{- if $keyless.identity -}}
{{- $_ := set $authority "identity" $keyless.identity -}}
{{- else -}}
{{- $_ := set $authority "identityRegex" $keyless.identityRegex -}}
{{- end -}}
{{- else -}}
{{- fail "selfVerify.enabled: give selfVerify.publicKeyFile (a trustFiles entry) or selfVerify.keyless.issuer with identity or identityRegex" -}}
{{- end -}}
{{- $authorities := get .config "authorities" | default dict -}}
{{- $rules := get .config "rules" | default list -}}
{{- if hasKey $authorities "guard-image" -}}
{{- fail "selfVerify: config.authorities already has guard-image; rename it or disable selfVerify" -}}
{{- end -}}
{{- $_ := set $authorities "guard-image" $authority -}}
{{- $rule := dict "name" "guard-image" "artifacts" (list .root.Values.image.repository) "authorities" (list "guard-image") -}}
{{- $_ = set .config "authorities" $authorities -}}
{{- $_ = set .config "rules" (prepend $rules $rule) -}}
{{- end -}}
{{- end -}}
