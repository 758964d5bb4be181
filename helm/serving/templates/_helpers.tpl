{{/* Names, labels and the few derived values shared by the templates. */}}

{{- define "serving.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name; the release name alone when it already contains the chart name. */}}
{{- define "serving.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "serving.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "serving.selectorLabels" -}}
app.kubernetes.io/name: {{ include "serving.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "serving.labels" -}}
helm.sh/chart: {{ include "serving.chart" . }}
{{ include "serving.selectorLabels" . }}
app.kubernetes.io/version: {{ include "serving.imageTag" . | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: model-serving
app.kubernetes.io/part-of: plinth
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "serving.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "serving.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "serving.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "serving.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "serving.imageTag" .) }}
{{- end }}
{{- end }}


{{/* The Secret the chart creates for values given inline (auth.tokens). */}}
{{- define "serving.secretName" -}}
{{- include "serving.fullname" . }}
{{- end }}

{{- define "serving.createSecret" -}}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) }}true{{ end }}
{{- end }}

{{- define "serving.authSecretName" -}}
{{- default (include "serving.secretName" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "serving.authSecretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}auth-tokens{{ end }}
{{- end }}

{{/*
The peers model serving calls, as a YAML list: the values key, its timeout's key under config, the TOML block,
the chart whose Service is the default address, its gRPC port, and the directory of its token and CA under
/etc/plinth.
*/}}
{{- define "serving.peers" -}}
- {key: featureStore, config: featureStore, toml: feature_store, chart: feature-store, port: 7003, dir: feature-store}
- {key: datahub, config: datahub, toml: monitoring.datahub, chart: datahub, port: 7002, dir: datahub}
- {key: schemaRegistry, config: registry, toml: monitoring.registry, chart: schema-registry, port: 7001, dir: registry}
{{- end }}

{{/* A peer's gRPC URL: the value, or its chart's Service of this release. Call with (dict "root" $ "peer" PEER). */}}
{{- define "serving.peerUrl" -}}
{{- $values := index .root.Values .peer.key }}
{{- if $values.url }}
{{- $values.url }}
{{- else }}
{{- printf "http://%s-%s:%d" .root.Release.Name .peer.chart (.peer.port | int) }}
{{- end }}
{{- end }}

{{/* Whether a peer needs a volume (a token or a CA from a Secret). Call with (dict "root" $ "peer" PEER). */}}
{{- define "serving.peerVolume" -}}
{{- $values := index .root.Values .peer.key }}
{{- if or $values.token.existingSecret $values.ca.existingSecret }}true{{ end }}
{{- end }}

{{/* A CA for a peer only verifies an https:// peer: refuse one with an http:// URL. */}}
{{- define "serving.checkPeers" -}}
{{- range (include "serving.peers" . | fromYamlArray) }}
{{- $values := index $.Values .key }}
{{- if and $values.ca.existingSecret (not (hasPrefix "https://" (include "serving.peerUrl" (dict "root" $ "peer" .)))) }}
{{- fail (printf "%s.ca.existingSecret is set, but %s's URL is not https://: set %s.url to its https:// address, or clear %s.ca.existingSecret" .key .chart .key .key) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The model repository root's scheme: s3, gs or file. */}}
{{- define "serving.modelsScheme" -}}
{{- (splitList "://" (required "models.root is required: s3://bucket/prefix, gs://bucket/prefix or file:///abs/dir (the model repository the orchestrator's train task writes; under the umbrella chart, global.objectStore.modelsRoot)" .Values.models.root)) | first }}
{{- end }}

{{/* A file:// root's directory, where its volume is mounted. */}}
{{- define "serving.modelsFilePath" -}}
{{- .Values.models.root | trimPrefix "file://" | trimSuffix "/" | default "/" }}
{{- end }}

{{/* Whether the repository's credentials Secret is used (a Secret is named and the scheme takes credentials). */}}
{{- define "serving.modelsCredentials" -}}
{{- $scheme := include "serving.modelsScheme" . }}
{{- if .Values.models.credentials.existingSecret }}
{{- if eq $scheme "file" }}
{{- fail "models.credentials.existingSecret is set, but models.root is a file:// directory, which takes no credentials: clear it, or use an s3:// or gs:// root" }}
{{- end }}
{{- true }}
{{- end }}
{{- end }}

{{/* server.shutdown_grace_period in whole seconds (the schema only admits "<N>s"). */}}
{{- define "serving.shutdownGraceSeconds" -}}
{{- .Values.config.server.shutdownGracePeriod | trimSuffix "s" | int }}
{{- end }}

{{/* Long enough for the preStop sleep plus the service's own drain, with a margin for process exit. */}}
{{- define "serving.terminationGracePeriodSeconds" -}}
{{- $needed := add (include "serving.shutdownGraceSeconds" . | int) (.Values.preStopSleepSeconds | int) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $needed 10 }}
{{- else if le (.Values.terminationGracePeriodSeconds | int) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + config.server.shutdownGracePeriod (%d s), or the kubelet kills model serving mid-drain" (.Values.terminationGracePeriodSeconds | int) $needed) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds | int }}
{{- end }}
{{- end }}

{{/*
How one probe checks, grpc, http or tcp. Call with (dict "root" $ "kind" "liveness|readiness|startup").
`auto`: readiness over gRPC health while TLS is off (the kubelet's gRPC probe is plaintext only), liveness and
startup over GET /healthz; with TLS, HTTPS GETs; with client certificates required, TCP (the kubelet has no
certificate to present).
*/}}
{{- define "serving.probeKind" -}}
{{- $values := .root.Values }}
{{- $mode := $values.probes.mode }}
{{- if eq $mode "auto" }}
{{- if and $values.tls.enabled $values.tls.clientAuth }}tcp
{{- else if and (eq .kind "readiness") (not $values.tls.enabled) }}grpc
{{- else }}http
{{- end }}
{{- else if and (eq $mode "grpc") $values.tls.enabled }}
{{- fail "probes.mode grpc does not work with tls.enabled: the kubelet's gRPC probe speaks plaintext only; use auto, http or tcp" }}
{{- else if and (eq $mode "http") $values.tls.enabled $values.tls.clientAuth }}
{{- fail "probes.mode http does not work with tls.clientAuth: the kubelet has no client certificate to present; use auto or tcp" }}
{{- else }}
{{- $mode }}
{{- end }}
{{- end }}

{{/*
One probe's action. Call with (dict "root" $ "kind" "liveness|readiness|startup").
Liveness and startup ask whether the server runs; readiness whether it can predict (models.load loaded).
*/}}
{{- define "serving.probeAction" -}}
{{- $root := .root }}
{{- $kind := include "serving.probeKind" . }}
{{- if eq $kind "grpc" }}
grpc:
  port: {{ $root.Values.containerPorts.grpc }}
  service: {{ if eq .kind "readiness" }}{{ $root.Values.probes.readinessGrpcService | quote }}{{ else }}""{{ end }}
{{- else if eq $kind "http" }}
httpGet:
  path: {{ if eq .kind "readiness" }}/readyz{{ else }}/healthz{{ end }}
  port: http
  scheme: {{ if $root.Values.tls.enabled }}HTTPS{{ else }}HTTP{{ end }}
{{- else }}
tcpSocket:
  port: grpc
{{- end }}
{{- end }}

{{/* Pod template fields that change the config the process sees: a change rolls the Deployment. */}}
{{- define "serving.configChecksum" -}}
{{- include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}

{{/*
Settings an umbrella chart shares through `global` (helm/plinth: global.postgresql, kafka, redis, objectStore,
tls, auth, serviceToken, serviceCa). Each shared key is this chart's own value when set (not null), else the
global one, else the default below; maps (object-store options) merge key by key. "serving.resolveGlobals"
writes the result into .Values in place and every template includes it first, so the rest of the chart
reads plain .Values; a second call changes nothing (resolved values are then the chart's own). An inline
secret value of the chart's own (database.url, auth.tokens) wins over a global Secret.
*/}}
{{- define "serving.sharedDefaults" -}}
models:
  root: ''
  credentials:
    existingSecret: ''
    aws:
      accessKeyIdKey: AWS_ACCESS_KEY_ID
      secretAccessKeyKey: AWS_SECRET_ACCESS_KEY
      sessionTokenKey: ''
    gcp:
      serviceAccountKey: service-account.json
tls:
  enabled: false
  existingSecret: ''
  clientAuth: false
auth:
  enabled: false
  existingSecret: ''
  existingSecretKey: tokens
  tokens: ''
token:
  existingSecret: ''
  existingSecretKey: token
ca:
  existingSecret: ''
  existingSecretKey: ca.crt
{{- end }}

{{- define "serving.resolveGlobals" -}}
{{- $g := .Values.global | default dict }}
{{- $os := $g.objectStore | default dict }}
{{- $d := include "serving.sharedDefaults" . | fromYaml }}
{{- include "serving.resolveInline" (list .Values.auth "tokens") }}
{{- $_ := set .Values "tls" (include "serving.coalesce" (list .Values.tls $g.tls $d.tls) | fromJson) }}
{{- $_ = set .Values "auth" (include "serving.coalesce" (list .Values.auth $g.auth $d.auth) | fromJson) }}
{{- $_ = set .Values.featureStore "token" (include "serving.coalesce" (list .Values.featureStore.token $g.serviceToken $d.token) | fromJson) }}
{{- $_ = set .Values.featureStore "ca" (include "serving.coalesce" (list .Values.featureStore.ca $g.serviceCa $d.ca) | fromJson) }}
{{- $_ = set .Values.datahub "token" (include "serving.coalesce" (list .Values.datahub.token $g.serviceToken $d.token) | fromJson) }}
{{- $_ = set .Values.datahub "ca" (include "serving.coalesce" (list .Values.datahub.ca $g.serviceCa $d.ca) | fromJson) }}
{{- $_ = set .Values.schemaRegistry "token" (include "serving.coalesce" (list .Values.schemaRegistry.token $g.serviceToken $d.token) | fromJson) }}
{{- $_ = set .Values.schemaRegistry "ca" (include "serving.coalesce" (list .Values.schemaRegistry.ca $g.serviceCa $d.ca) | fromJson) }}
{{- $_ = set .Values "models" (include "serving.coalesce" (list .Values.models (dict "root" $os.modelsRoot "options" $os.options "credentials" $os.credentials) $d.models) | fromJson) }}
{{- include "serving.checkShared" . }}
{{- end }}

{{/* serving.coalesce (list OWN GLOBAL DEFAULT): JSON of the three maps merged, per key the first non-null. */}}
{{- define "serving.coalesce" -}}
{{- $own := index . 0 | default dict }}
{{- $global := index . 1 | default dict }}
{{- $default := index . 2 | default dict }}
{{- $out := dict }}
{{- range $k := concat (keys $own) (keys $global) (keys $default) | uniq }}
{{- $layers := list (index $own $k) (index $global $k) (index $default $k) }}
{{- if or (kindIs "map" (index $layers 0)) (kindIs "map" (index $layers 1)) (kindIs "map" (index $layers 2)) }}
{{- $_ := set $out $k (include "serving.coalesce" $layers | fromJson) }}
{{- else }}
{{- range $layer := $layers }}
{{- if and (not (hasKey $out $k)) (not (kindIs "invalid" $layer)) }}
{{- $_ := set $out $k $layer }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* serving.resolveInline (list BLOCK KEY): an inline BLOCK.KEY of the chart's own, with BLOCK.existingSecret
unset, means "no Secret": global's Secret must not shadow it. */}}
{{- define "serving.resolveInline" -}}
{{- $block := index . 0 }}
{{- if and (kindIs "invalid" $block.existingSecret) (index $block (index . 1)) }}
{{- $_ := set $block "existingSecret" "" }}
{{- end }}
{{- end }}

{{/* What the schema cannot check before globals are applied: the resolved values' required pairs. */}}
{{- define "serving.checkShared" -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- fail "tls.enabled is true, but tls.existingSecret is empty: name the kubernetes.io/tls Secret with tls.crt and tls.key (under the umbrella chart, global.tls.existingSecret)" }}
{{- end }}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) (not .Values.auth.tokens) }}
{{- fail "auth.enabled is true, but neither auth.existingSecret nor auth.tokens is set: name the Secret holding the tokens file, or give its lines in auth.tokens (under the umbrella chart, global.auth)" }}
{{- end }}
{{- end }}
