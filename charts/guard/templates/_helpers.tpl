{{/* Names ------------------------------------------------------------------------------- */}}

{{- define "guard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "guard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "guard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "guard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "guard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The webhook's configuration object is cluster-scoped: qualify it by namespace. */}}
{{- define "guard.webhookName" -}}
{{- printf "%s.%s.guard.cnai.dev" (include "guard.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "guard.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{- required "tls.secret.name is required when tls.mode is secret" .Values.tls.secret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "guard.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "guard.serviceHost" -}}
{{- printf "%s.%s.svc" (include "guard.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* Labels (Kubernetes recommended labels) ---------------------------------------------- */}}

{{- define "guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "guard.labels" -}}
helm.sh/chart: {{ include "guard.chart" . }}
{{ include "guard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/part-of: guard
{{- end -}}

{{/* guard.labels with another component (each key once: a duplicate key is invalid YAML). */}}
{{- define "guard.componentLabels" -}}
{{- $labels := include "guard.labels" .ctx | fromYaml -}}
{{- $_ := set $labels "app.kubernetes.io/component" .component -}}
{{- toYaml $labels -}}
{{- end -}}

{{/* Images ------------------------------------------------------------------------------ */}}

{{- define "guard.imageRef" -}}
{{- $image := .image -}}
{{- if and $image.digest (not (regexMatch "^sha256:[a-f0-9]{64}$" $image.digest)) -}}
{{- fail (printf "%s.digest: expected sha256: and 64 lowercase hex digits, found %q" .path $image.digest) -}}
{{- end -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .default $image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "guard.image" -}}
{{- include "guard.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion "path" "image") -}}
{{- end -}}

{{- define "guard.opaImage" -}}
{{- include "guard.imageRef" (dict "image" .Values.opa.image "default" "latest-static" "path" "opa.image") -}}
{{- end -}}

{{/* Exempt namespaces: never sent by the API server, and exempt in guard's own config. ---- */}}

{{- define "guard.exemptNamespaces" -}}
{{- $config := .Values.config | default dict -}}
{{- $admission := get $config "admission" | default dict -}}
{{- $names := list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace -}}
{{- $names = concat $names (.Values.webhook.exemptNamespaces | default list) (get $admission "exemptNamespaces" | default list) (get $admission "exempt_namespaces" | default list) -}}
{{- toJson (dict "names" ($names | uniq)) -}}
{{- end -}}

{{/* The namespaceSelector of guard's webhooks: opt-in label (unless clusterWide), the user's
     selector, and the always-excluded namespaces. */}}
{{- define "guard.namespaceSelector" -}}
{{- $labels := deepCopy (.Values.webhook.namespaceSelector.matchLabels | default dict) -}}
{{- if not .Values.webhook.clusterWide -}}
{{- $_ := set $labels .Values.webhook.optInLabel.key .Values.webhook.optInLabel.value -}}
{{- end -}}
{{- $expressions := list (dict "key" "kubernetes.io/metadata.name" "operator" "NotIn" "values" (include "guard.exemptNamespaces" . | fromJson).names) -}}
{{- $expressions = concat $expressions (.Values.webhook.namespaceSelector.matchExpressions | default list) -}}
{{- $selector := dict "matchExpressions" $expressions -}}
{{- if $labels -}}
{{- $_ := set $selector "matchLabels" $labels -}}
{{- end -}}
{{- toYaml $selector -}}
{{- end -}}

{{/* matchConditions of guard's webhooks: the values' own, plus (webhook.skipDeploymentReplicaSets)
     one that does not send a ReplicaSet a Deployment controls: its template is the Deployment's,
     already checked, and its Pods are still sent (a forged ownerReference skips nothing). */}}
{{- define "guard.matchConditions" -}}
{{- $conditions := list -}}
{{- if .Values.webhook.skipDeploymentReplicaSets -}}
{{- $expression := "!(request.resource.group == 'apps' && request.resource.resource == 'replicasets' && has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(o, has(o.controller) && o.controller && o.kind == 'Deployment' && o.apiVersion.startsWith('apps/')))" -}}
{{- $conditions = append $conditions (dict "name" "not-a-deployments-replicaset" "expression" $expression) -}}
{{- end -}}
{{- $conditions = concat $conditions (.Values.webhook.matchConditions | default list) -}}
{{- toJson (dict "items" $conditions) -}}
{{- end -}}

{{/* Paths inside the container ---------------------------------------------------------- */}}

{{- define "guard.paths" -}}
{{- toJson (dict
  "config" "/etc/guard/config/config.yaml"
  "tls" "/etc/guard/tls"
  "trust" "/etc/guard/trust"
  "policies" "/etc/guard/policies"
  "registry" "/etc/guard/registry"
  "registryCa" "/etc/guard/registry-ca/ca.crt"
  "usage" "/etc/guard/usage"
  "mirrors" "/var/lib/guard/mirrors"
  "opaPolicies" "/policies") -}}
{{- end -}}

{{/* Registry mirrors (values mirrors): one read-only volume per registry host, mounted at
     <paths.mirrors>/<host> (lowercase, ":" and brackets as "_") and written into the config as
     that host's registries[].mirror.ociLayout. Each item: host (lowercase), name (the volume's),
     path (the mount), subPath (when given), volume (the source, readOnly set where the source
     has the field: the kubelet then mounts it read-only for the whole pod and skips fsGroup's
     recursive ownership change, so the mirror is never written, not even by chown). */}}
{{- define "guard.mirrors" -}}
{{- $paths := include "guard.paths" . | fromJson -}}
{{- $readOnlySources := list "persistentVolumeClaim" "csi" "nfs" "cephfs" "iscsi" "rbd" "fc" "flexVolume" "azureFile" "azureDisk" "gcePersistentDisk" "awsElasticBlockStore" "portworxVolume" "quobyte" "storageos" "scaleIO" "glusterfs" -}}
{{- $mirrors := list -}}
{{- $seen := dict -}}
{{- range $i, $mirror := .Values.mirrors | default list -}}
{{- $host := lower (required (printf "mirrors[%d].host is required" $i) $mirror.host) -}}
{{- $dir := regexReplaceAll "[^a-z0-9.-]" $host "_" -}}
{{- if hasKey $seen $dir -}}
{{- fail (printf "mirrors[%d].host: %s is mirrored twice (mirrors[%v] names it too): give one mirror per registry host" $i $mirror.host (get $seen $dir)) -}}
{{- end -}}
{{- $_ := set $seen $dir $i -}}
{{- $volume := deepCopy (required (printf "mirrors[%d].volume is required (a volume source such as persistentVolumeClaim)" $i) $mirror.volume) -}}
{{- range $source, $spec := $volume -}}
{{- if has $source $readOnlySources -}}
{{- if and (hasKey $spec "readOnly") (not (get $spec "readOnly")) -}}
{{- fail (printf "mirrors[%d].volume.%s.readOnly is false: guard reads a mirror and never writes it; remove readOnly (the chart sets it true)" $i $source) -}}
{{- end -}}
{{- $_ = set $spec "readOnly" true -}}
{{- end -}}
{{- end -}}
{{- $item := dict "host" $host "name" (printf "mirror-%d" $i) "path" (printf "%s/%s" $paths.mirrors $dir) "volume" $volume -}}
{{- with $mirror.subPath -}}
{{- $_ = set $item "subPath" . -}}
{{- end -}}
{{- $mirrors = append $mirrors $item -}}
{{- end -}}
{{- toJson (dict "items" $mirrors) -}}
{{- end -}}

{{/* config.registries with each mirror of the values as its host's mirror.ociLayout: merged
     into the host's entry when the config has one (an ociLayout of its own elsewhere fails),
     appended otherwise. */}}
{{- define "guard.registries" -}}
{{- $config := .config -}}
{{- $registries := list -}}
{{- $claimed := dict -}}
{{- range $i, $entry := get $config "registries" | default list -}}
{{- range $mirror := $.mirrors -}}
{{- if and (kindIs "map" $entry) (eq (lower (toString (get $entry "host"))) $mirror.host) -}}
{{- $own := get $entry "mirror" | default dict -}}
{{- include "guard.camelKey" (dict "map" $own "old" "oci_layout" "new" "ociLayout" "path" (printf "config.registries.%d.mirror" $i)) -}}
{{- if and (get $own "ociLayout") (ne (toString (get $own "ociLayout")) $mirror.path) -}}
{{- fail (printf "config.registries.%d.mirror.ociLayout (%s) conflicts with mirrors (%s, mounted at %s): give one of them" $i (get $own "ociLayout") $mirror.host $mirror.path) -}}
{{- end -}}
{{- $_ := set $own "ociLayout" $mirror.path -}}
{{- $_ = set $entry "mirror" $own -}}
{{- $_ = set $claimed $mirror.host true -}}
{{- end -}}
{{- end -}}
{{- $registries = append $registries $entry -}}
{{- end -}}
{{- range $mirror := .mirrors -}}
{{- if not (hasKey $claimed $mirror.host) -}}
{{- $registries = append $registries (dict "host" $mirror.host "mirror" (dict "ociLayout" $mirror.path)) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $config "registries" $registries -}}
{{- end -}}

{{/* guard's config keys are camelCase; snake_case is their deprecated spelling (guard warns).
     guard.camelKey: in the map .map (at .path in the values), a key the chart reads or sets is
     moved from its deprecated spelling .old to .new, so the rendered file has it once, in
     camelCase; both spellings at once fail, as guard refuses them. */}}
{{- define "guard.camelKey" -}}
{{- if hasKey .map .old -}}
{{- if hasKey .map .new -}}
{{- fail (printf "%s: expected the key %s once, found %s and %s (%s is its deprecated spelling); give %s only" .path .new .new .old .old .new) -}}
{{- end -}}
{{- $_ := set .map .new (get .map .old) -}}
{{- $_ = unset .map .old -}}
{{- end -}}
{{- end -}}

{{/* guard's config file: the values' config with the chart-managed settings laid over it. -- */}}

{{- define "guard.config" -}}
{{- $paths := include "guard.paths" . | fromJson -}}
{{- $config := deepCopy (.Values.config | default dict) -}}
{{- $admission := get $config "admission" | default dict -}}
{{- range $old, $new := dict "timeout_seconds" "timeoutSeconds" "deadline_margin_seconds" "deadlineMarginSeconds" "exempt_namespaces" "exemptNamespaces" -}}
{{- include "guard.camelKey" (dict "map" $admission "old" $old "new" $new "path" "config.admission") -}}
{{- end -}}
{{- include "guard.camelKey" (dict "map" $config "old" "unmatched_artifacts" "new" "unmatchedArtifacts" "path" "config") -}}
{{- if and (hasKey $admission "timeoutSeconds") (ne (toString (get $admission "timeoutSeconds")) (toString .Values.webhook.timeoutSeconds)) -}}
{{- fail (printf "config.admission.timeoutSeconds (%v) differs from webhook.timeoutSeconds (%v): set webhook.timeoutSeconds only; the chart writes it to both places" (get $admission "timeoutSeconds") .Values.webhook.timeoutSeconds) -}}
{{- end -}}
{{- $margin := 1.5 -}}
{{- if hasKey $admission "deadlineMarginSeconds" -}}
{{- $margin = get $admission "deadlineMarginSeconds" -}}
{{- end -}}
{{- if lt (subf .Values.webhook.timeoutSeconds $margin) 0.2 -}}
{{- fail (printf "webhook.timeoutSeconds (%v) leaves guard less than 0.2 s to decide after config.admission.deadlineMarginSeconds (%v): raise the timeout or lower the margin" .Values.webhook.timeoutSeconds $margin) -}}
{{- end -}}
{{- $_ := set $admission "timeoutSeconds" .Values.webhook.timeoutSeconds -}}
{{- if eq .Values.mode "warn" -}}
{{- $_ = set $admission "mode" "warn" -}}
{{- end -}}
{{- if eq .Values.mode "warn" -}}
{{- /* warn: every deny becomes a warning (policies, unmatched artifacts); nothing is refused
       for its content. Malformed requests are still refused. */ -}}
{{- $policyWarn := get $config "policy" | default dict -}}
{{- include "guard.camelKey" (dict "map" $policyWarn "old" "default_enforcement" "new" "defaultEnforcement" "path" "config.policy") -}}
{{- $_ = set $policyWarn "defaultEnforcement" "warn" -}}
{{- $enforcement := dict -}}
{{- range $name, $action := (get $policyWarn "enforcement" | default dict) -}}
{{- $_ = set $enforcement $name (ternary "warn" $action (eq $action "deny")) -}}
{{- end -}}
{{- if $enforcement -}}
{{- $_ = set $policyWarn "enforcement" $enforcement -}}
{{- end -}}
{{- $_ = set $config "policy" $policyWarn -}}
{{- if eq (get $config "unmatchedArtifacts" | default "deny") "deny" -}}
{{- $_ = set $config "unmatchedArtifacts" "warn" -}}
{{- end -}}
{{- end -}}
{{- $_ = set $admission "exemptNamespaces" (include "guard.exemptNamespaces" . | fromJson).names -}}
{{- $registry := get $admission "registry" | default dict -}}
{{- if .Values.registry.credentialsSecret -}}
{{- include "guard.camelKey" (dict "map" $registry "old" "docker_config" "new" "dockerConfig" "path" "config.admission.registry") -}}
{{- $_ = set $registry "dockerConfig" (printf "%s/config.json" $paths.registry) -}}
{{- end -}}
{{- if .Values.registry.caBundle -}}
{{- include "guard.camelKey" (dict "map" $registry "old" "ca_file" "new" "caFile" "path" "config.admission.registry") -}}
{{- $_ = set $registry "caFile" $paths.registryCa -}}
{{- end -}}
{{- if $registry -}}
{{- $_ = set $admission "registry" $registry -}}
{{- end -}}
{{- $_ = set $config "admission" $admission -}}
{{- include "guard.selfVerify" (dict "config" $config "root" .) -}}
{{- $policy := get $config "policy" | default dict -}}
{{- if .Values.policies.files -}}
{{- if and (get $policy "directory") (ne (get $policy "directory") $paths.policies) -}}
{{- fail (printf "config.policy.directory (%s) conflicts with policies.files (mounted at %s): give one of them" (get $policy "directory") $paths.policies) -}}
{{- end -}}
{{- $_ = set $policy "directory" $paths.policies -}}
{{- end -}}
{{- if .Values.opa.enabled -}}
{{- $engine := get $policy "engine" | default dict -}}
{{- $url := printf "http://127.0.0.1:%v" .Values.opa.port -}}
{{- if and (get $engine "kind") (ne (get $engine "kind") "opa") -}}
{{- fail (printf "opa.enabled is true but config.policy.engine.kind is %q: remove config.policy.engine (the chart points it at the sidecar) or disable opa" (get $engine "kind")) -}}
{{- end -}}
{{- if and (get $engine "url") (ne (get $engine "url") $url) -}}
{{- fail (printf "opa.enabled is true but config.policy.engine.url is %q: the sidecar listens on %s; remove the url" (get $engine "url") $url) -}}
{{- end -}}
{{- $_ = set $engine "kind" "opa" -}}
{{- $_ = set $engine "url" $url -}}
{{- include "guard.camelKey" (dict "map" $engine "old" "timeout_seconds" "new" "timeoutSeconds" "path" "config.policy.engine") -}}
{{- $_ = set $engine "timeoutSeconds" .Values.opa.timeoutSeconds -}}
{{- $_ = set $policy "engine" $engine -}}
{{- end -}}
{{- if $policy -}}
{{- $_ = set $config "policy" $policy -}}
{{- end -}}
{{- if .Values.energyUsage.configMap -}}
{{- $energy := get $config "energy" | default dict -}}
{{- include "guard.camelKey" (dict "map" $energy "old" "usage_file" "new" "usageFile" "path" "config.energy") -}}
{{- $usageFile := printf "%s/%s" $paths.usage .Values.energyUsage.key -}}
{{- if and (get $energy "usageFile") (ne (get $energy "usageFile") $usageFile) -}}
{{- fail (printf "config.energy.usageFile (%s) conflicts with energyUsage.configMap (mounted at %s): give one of them" (get $energy "usageFile") $usageFile) -}}
{{- end -}}
{{- $_ = set $energy "usageFile" $usageFile -}}
{{- $_ = set $config "energy" $energy -}}
{{- end -}}
{{- $mirrors := (include "guard.mirrors" . | fromJson).items -}}
{{- if $mirrors -}}
{{- include "guard.registries" (dict "config" $config "mirrors" $mirrors) -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* ConfigMap key of a policy file: "<bundle>/<policy>.rego" -> "<bundle>.<policy>.rego"
     (bundle names hold no dots, so the mapping is one-to-one). */}}
{{- define "guard.policyKey" -}}
{{- . | replace "/" "." -}}
{{- end -}}

{{/* --metrics-port: plain HTTP /metrics, apart from the admission port; one worker only. */}}
{{- define "guard.metricsPort" -}}
{{- $port := int .Values.metrics.port -}}
{{- if and $port (gt (int .Values.server.workers) 1) -}}
{{- fail (printf "metrics.port (%d) needs server.workers 1 (each worker counts apart); set metrics.port 0 to run %d workers without metrics" $port (int .Values.server.workers)) -}}
{{- end -}}
{{- if eq $port (int .Values.server.port) -}}
{{- fail (printf "metrics.port (%d) must differ from server.port: the admission port never serves /metrics" $port) -}}
{{- end -}}
{{- $port -}}
{{- end -}}
