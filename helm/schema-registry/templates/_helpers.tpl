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
