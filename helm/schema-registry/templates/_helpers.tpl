{{/* Names, labels and the few derived values shared by the templates. */}}

{{- define "schema-registry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name; the release name alone when it already contains the chart name. */}}
{{- define "schema-registry.fullname" -}}
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

{{- define "schema-registry.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "schema-registry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "schema-registry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "schema-registry.labels" -}}
helm.sh/chart: {{ include "schema-registry.chart" . }}
{{ include "schema-registry.selectorLabels" . }}
app.kubernetes.io/version: {{ include "schema-registry.imageTag" . | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: schema-registry
app.kubernetes.io/part-of: plinth
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "schema-registry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "schema-registry.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "schema-registry.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "schema-registry.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "schema-registry.imageTag" .) }}
{{- end }}
{{- end }}

{{/* The Secret the chart creates for values given inline (database.url, auth.tokens). */}}
{{- define "schema-registry.secretName" -}}
{{- include "schema-registry.fullname" . }}
{{- end }}

{{- define "schema-registry.createSecret" -}}
{{- if or (not .Values.database.existingSecret) (and .Values.auth.enabled (not .Values.auth.existingSecret)) }}true{{ end }}
{{- end }}

{{- define "schema-registry.databaseSecretName" -}}
{{- default (include "schema-registry.secretName" .) .Values.database.existingSecret }}
{{- end }}

{{- define "schema-registry.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}database-url{{ end }}
{{- end }}

{{- define "schema-registry.authSecretName" -}}
{{- default (include "schema-registry.secretName" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "schema-registry.authSecretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}auth-tokens{{ end }}
{{- end }}

{{/* server.shutdown_grace_period in whole seconds (the schema only admits "<N>s"). */}}
{{- define "schema-registry.shutdownGraceSeconds" -}}
{{- .Values.config.server.shutdownGracePeriod | trimSuffix "s" | int }}
{{- end }}

{{/* Long enough for the preStop sleep plus the service's own drain, with a margin for process exit. */}}
{{- define "schema-registry.terminationGracePeriodSeconds" -}}
{{- $needed := add (include "schema-registry.shutdownGraceSeconds" . | int) (.Values.preStopSleepSeconds | int) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $needed 10 }}
{{- else if le (.Values.terminationGracePeriodSeconds | int) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + config.server.shutdownGracePeriod (%d s), or the kubelet kills the registry mid-drain" (.Values.terminationGracePeriodSeconds | int) $needed) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds | int }}
{{- end }}
{{- end }}

{{/* Probe mode after resolving `auto` (see values.yaml, probes). */}}
{{- define "schema-registry.probeMode" -}}
{{- $mode := .Values.probes.mode }}
{{- if eq $mode "auto" }}
{{- if not .Values.tls.enabled }}grpc{{ else if .Values.tls.clientAuth }}tcp{{ else }}http{{ end }}
{{- else if and (eq $mode "grpc") .Values.tls.enabled }}
{{- fail "probes.mode grpc does not work with tls.enabled: the kubelet's gRPC probe speaks plaintext only; use auto, http or tcp" }}
{{- else }}
{{- $mode }}
{{- end }}
{{- end }}

{{/*
One probe's action. Call with (dict "root" $ "kind" "liveness|readiness|startup").
Liveness and startup ask whether the server runs; readiness whether it can serve (database reachable).
*/}}
{{- define "schema-registry.probeAction" -}}
{{- $root := .root }}
{{- $mode := include "schema-registry.probeMode" $root }}
{{- if eq $mode "grpc" }}
grpc:
  port: {{ $root.Values.containerPorts.grpc }}
  service: {{ if eq .kind "readiness" }}{{ $root.Values.probes.readinessGrpcService | quote }}{{ else }}""{{ end }}
{{- else if eq $mode "http" }}
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
{{- define "schema-registry.configChecksum" -}}
{{- include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}

{{/*
Settings an umbrella chart shares through `global` (helm/plinth: global.postgresql, kafka, redis, objectStore,
tls, auth, serviceToken, serviceCa). Each shared key is this chart's own value when set (not null), else the
global one, else the default below; maps (object-store options) merge key by key. "schema-registry.resolveGlobals"
writes the result into .Values in place and every template includes it first, so the rest of the chart
reads plain .Values; a second call changes nothing (resolved values are then the chart's own). An inline
secret value of the chart's own (database.url, auth.tokens) wins over a global Secret.
*/}}
{{- define "schema-registry.sharedDefaults" -}}
tls:
  enabled: false
  existingSecret: ''
  clientAuth: false
auth:
  enabled: false
  existingSecret: ''
  existingSecretKey: tokens
  tokens: ''
{{- end }}

{{- define "schema-registry.resolveGlobals" -}}
{{- $g := .Values.global | default dict }}
{{- $os := $g.objectStore | default dict }}
{{- $d := include "schema-registry.sharedDefaults" . | fromYaml }}
{{- include "schema-registry.resolveDatabase" . }}
{{- include "schema-registry.resolveInline" (list .Values.auth "tokens") }}
{{- $_ := set .Values "tls" (include "schema-registry.coalesce" (list .Values.tls $g.tls $d.tls) | fromJson) }}
{{- $_ = set .Values "auth" (include "schema-registry.coalesce" (list .Values.auth $g.auth $d.auth) | fromJson) }}
{{- include "schema-registry.checkShared" . }}
{{- end }}

{{/* schema-registry.coalesce (list OWN GLOBAL DEFAULT): JSON of the three maps merged, per key the first non-null. */}}
{{- define "schema-registry.coalesce" -}}
{{- $own := index . 0 | default dict }}
{{- $global := index . 1 | default dict }}
{{- $default := index . 2 | default dict }}
{{- $out := dict }}
{{- range $k := concat (keys $own) (keys $global) (keys $default) | uniq }}
{{- $layers := list (index $own $k) (index $global $k) (index $default $k) }}
{{- if or (kindIs "map" (index $layers 0)) (kindIs "map" (index $layers 1)) (kindIs "map" (index $layers 2)) }}
{{- $_ := set $out $k (include "schema-registry.coalesce" $layers | fromJson) }}
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

{{/* schema-registry.resolveInline (list BLOCK KEY): an inline BLOCK.KEY of the chart's own, with BLOCK.existingSecret
unset, means "no Secret": global's Secret must not shadow it. */}}
{{- define "schema-registry.resolveInline" -}}
{{- $block := index . 0 }}
{{- if and (kindIs "invalid" $block.existingSecret) (index $block (index . 1)) }}
{{- $_ := set $block "existingSecret" "" }}
{{- end }}
{{- end }}

{{/* The database URL's Secret: database.existingSecret, else the chart's own Secret from database.url, else
global.postgresql.existingSecret with key global.postgresql.keys.schemaRegistry (default "schema-registry"). */}}
{{- define "schema-registry.resolveDatabase" -}}
{{- $db := .Values.database }}
{{- $pg := (.Values.global | default dict).postgresql | default dict }}
{{- if kindIs "invalid" $db.existingSecret }}
{{- if and (not $db.url) $pg.existingSecret }}
{{- $_ := set $db "existingSecret" $pg.existingSecret }}
{{- if kindIs "invalid" $db.existingSecretKey }}
{{- $_ := set $db "existingSecretKey" ((($pg.keys | default dict).schemaRegistry) | default "schema-registry") }}
{{- end }}
{{- else }}
{{- $_ := set $db "existingSecret" "" }}
{{- end }}
{{- end }}
{{- if kindIs "invalid" $db.existingSecretKey }}
{{- $_ := set $db "existingSecretKey" "url" }}
{{- end }}
{{- if and (not $db.existingSecret) (not $db.url) }}
{{- fail "database.url is empty: set database.url (postgres://USER:PASSWORD@HOST:5432/DB) or database.existingSecret; under the umbrella chart, global.postgresql.existingSecret" }}
{{- end }}
{{- end }}

{{/* What the schema cannot check before globals are applied: the resolved values' required pairs. */}}
{{- define "schema-registry.checkShared" -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- fail "tls.enabled is true, but tls.existingSecret is empty: name the kubernetes.io/tls Secret with tls.crt and tls.key (under the umbrella chart, global.tls.existingSecret)" }}
{{- end }}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) (not .Values.auth.tokens) }}
{{- fail "auth.enabled is true, but neither auth.existingSecret nor auth.tokens is set: name the Secret holding the tokens file, or give its lines in auth.tokens (under the umbrella chart, global.auth)" }}
{{- end }}
{{- end }}
