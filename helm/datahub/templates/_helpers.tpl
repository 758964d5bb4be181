{{/* Names, labels and the few derived values shared by the templates. */}}

{{- define "datahub.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name; the release name alone when it already contains the chart name. */}}
{{- define "datahub.fullname" -}}
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

{{- define "datahub.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "datahub.selectorLabels" -}}
app.kubernetes.io/name: {{ include "datahub.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "datahub.labels" -}}
helm.sh/chart: {{ include "datahub.chart" . }}
{{ include "datahub.selectorLabels" . }}
app.kubernetes.io/version: {{ include "datahub.imageTag" . | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: datahub
app.kubernetes.io/part-of: plinth
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "datahub.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "datahub.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "datahub.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "datahub.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "datahub.imageTag" .) }}
{{- end }}
{{- end }}

{{/* The Secret the chart creates for values given inline (database.url, auth.tokens). */}}
{{- define "datahub.secretName" -}}
{{- include "datahub.fullname" . }}
{{- end }}

{{- define "datahub.createSecret" -}}
{{- if or (not .Values.database.existingSecret) (and .Values.auth.enabled (not .Values.auth.existingSecret)) }}true{{ end }}
{{- end }}

{{- define "datahub.databaseSecretName" -}}
{{- default (include "datahub.secretName" .) .Values.database.existingSecret }}
{{- end }}

{{- define "datahub.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}database-url{{ end }}
{{- end }}

{{- define "datahub.authSecretName" -}}
{{- default (include "datahub.secretName" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "datahub.authSecretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}auth-tokens{{ end }}
{{- end }}

{{/* Kafka: whether the security protocol uses SASL, and whether it uses TLS. */}}
{{- define "datahub.kafkaSasl" -}}
{{- if has .Values.kafka.securityProtocol (list "sasl_plaintext" "sasl_ssl") }}true{{ end }}
{{- end }}

{{- define "datahub.kafkaTls" -}}
{{- if has .Values.kafka.securityProtocol (list "ssl" "sasl_ssl") }}true{{ end }}
{{- end }}

{{/* Whether the Kafka TLS Secret is mounted (a CA bundle, a client certificate, or both). */}}
{{- define "datahub.kafkaTlsMount" -}}
{{- $tls := .Values.kafka.tls }}
{{- if $tls.existingSecret }}
{{- if not (include "datahub.kafkaTls" .) }}
{{- fail (printf "kafka.tls.existingSecret is set, but kafka.securityProtocol %s does not use TLS: use ssl or sasl_ssl, or clear kafka.tls.existingSecret" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if not (or $tls.caKey $tls.clientCertificate) }}
{{- fail "kafka.tls.existingSecret is set but nothing is taken from it: set kafka.tls.caKey (the CA bundle) or kafka.tls.clientCertificate" }}
{{- end }}
{{- true }}
{{- end }}
{{- end }}

{{/* The schema registry's gRPC URL: the value, or the schema-registry chart's Service of this release. */}}
{{- define "datahub.schemaRegistryUrl" -}}
{{- if .Values.schemaRegistry.url }}
{{- .Values.schemaRegistry.url }}
{{- else }}
{{- printf "http://%s-schema-registry:7001" .Release.Name }}
{{- end }}
{{- end }}

{{/* The lake root's scheme: s3, gs or file. */}}
{{- define "datahub.lakeScheme" -}}
{{- (splitList "://" (required "lake.root is required: s3://bucket/prefix, gs://bucket/prefix or file:///abs/dir" .Values.lake.root)) | first }}
{{- end }}

{{/* A file:// root's directory, where its volume is mounted. */}}
{{- define "datahub.lakeFilePath" -}}
{{- .Values.lake.root | trimPrefix "file://" | trimSuffix "/" | default "/" }}
{{- end }}

{{/* Whether the lake's credentials Secret is used (a Secret is named and the scheme takes credentials). */}}
{{- define "datahub.lakeCredentials" -}}
{{- $scheme := include "datahub.lakeScheme" . }}
{{- if .Values.lake.credentials.existingSecret }}
{{- if eq $scheme "file" }}
{{- fail "lake.credentials.existingSecret is set, but lake.root is a file:// directory, which takes no credentials: clear it, or use an s3:// or gs:// root" }}
{{- end }}
{{- true }}
{{- end }}
{{- end }}

{{/* server.shutdown_grace_period in whole seconds (the schema only admits "<N>s"). */}}
{{- define "datahub.shutdownGraceSeconds" -}}
{{- .Values.config.server.shutdownGracePeriod | trimSuffix "s" | int }}
{{- end }}

{{/* Long enough for the preStop sleep plus the service's own drain, with a margin for process exit. */}}
{{- define "datahub.terminationGracePeriodSeconds" -}}
{{- $needed := add (include "datahub.shutdownGraceSeconds" . | int) (.Values.preStopSleepSeconds | int) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $needed 10 }}
{{- else if le (.Values.terminationGracePeriodSeconds | int) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + config.server.shutdownGracePeriod (%d s), or the kubelet kills the gateway mid-drain" (.Values.terminationGracePeriodSeconds | int) $needed) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds | int }}
{{- end }}
{{- end }}

{{/* Probe mode after resolving `auto` (see values.yaml, probes). */}}
{{- define "datahub.probeMode" -}}
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
{{- define "datahub.probeAction" -}}
{{- $root := .root }}
{{- $mode := include "datahub.probeMode" $root }}
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
{{- define "datahub.configChecksum" -}}
{{- include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}
