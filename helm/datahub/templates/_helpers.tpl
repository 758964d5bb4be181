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
{{- (splitList "://" (required "lake.root is required: s3://bucket/prefix, gs://bucket/prefix or file:///abs/dir (under the umbrella chart, global.objectStore.lakeRoot)" .Values.lake.root)) | first }}
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

{{/*
Settings an umbrella chart shares through `global` (helm/plinth: global.postgresql, kafka, redis, objectStore,
tls, auth, serviceToken, serviceCa). Each shared key is this chart's own value when set (not null), else the
global one, else the default below; maps (object-store options) merge key by key. "datahub.resolveGlobals"
writes the result into .Values in place and every template includes it first, so the rest of the chart
reads plain .Values; a second call changes nothing (resolved values are then the chart's own). An inline
secret value of the chart's own (database.url, auth.tokens) wins over a global Secret.
*/}}
{{- define "datahub.sharedDefaults" -}}
kafka:
  bootstrapServers: ''
  securityProtocol: plaintext
  sasl:
    mechanism: ''
    username: ''
    existingSecret: ''
    passwordKey: password
    usernameKey: ''
    passwordAs: file
  tls:
    existingSecret: ''
    caKey: ca.crt
    clientCertificate: false
    certificateKey: tls.crt
    privateKeyKey: tls.key
lake:
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

{{- define "datahub.resolveGlobals" -}}
{{- $g := .Values.global | default dict }}
{{- $os := $g.objectStore | default dict }}
{{- $d := include "datahub.sharedDefaults" . | fromYaml }}
{{- include "datahub.resolveDatabase" . }}
{{- include "datahub.resolveInline" (list .Values.auth "tokens") }}
{{- $_ := set .Values "tls" (include "datahub.coalesce" (list .Values.tls $g.tls $d.tls) | fromJson) }}
{{- $_ = set .Values "auth" (include "datahub.coalesce" (list .Values.auth $g.auth $d.auth) | fromJson) }}
{{- $_ = set .Values.schemaRegistry "token" (include "datahub.coalesce" (list .Values.schemaRegistry.token $g.serviceToken $d.token) | fromJson) }}
{{- $_ = set .Values.schemaRegistry "ca" (include "datahub.coalesce" (list .Values.schemaRegistry.ca $g.serviceCa $d.ca) | fromJson) }}
{{- $_ = set .Values "kafka" (include "datahub.coalesce" (list .Values.kafka $g.kafka $d.kafka) | fromJson) }}
{{- $_ = set .Values "lake" (include "datahub.coalesce" (list .Values.lake (dict "root" $os.lakeRoot "options" $os.options "credentials" $os.credentials) $d.lake) | fromJson) }}
{{- include "datahub.checkShared" . }}
{{- end }}

{{/* datahub.coalesce (list OWN GLOBAL DEFAULT): JSON of the three maps merged, per key the first non-null. */}}
{{- define "datahub.coalesce" -}}
{{- $own := index . 0 | default dict }}
{{- $global := index . 1 | default dict }}
{{- $default := index . 2 | default dict }}
{{- $out := dict }}
{{- range $k := concat (keys $own) (keys $global) (keys $default) | uniq }}
{{- $layers := list (index $own $k) (index $global $k) (index $default $k) }}
{{- if or (kindIs "map" (index $layers 0)) (kindIs "map" (index $layers 1)) (kindIs "map" (index $layers 2)) }}
{{- $_ := set $out $k (include "datahub.coalesce" $layers | fromJson) }}
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

{{/* datahub.resolveInline (list BLOCK KEY): an inline BLOCK.KEY of the chart's own, with BLOCK.existingSecret
unset, means "no Secret": global's Secret must not shadow it. */}}
{{- define "datahub.resolveInline" -}}
{{- $block := index . 0 }}
{{- if and (kindIs "invalid" $block.existingSecret) (index $block (index . 1)) }}
{{- $_ := set $block "existingSecret" "" }}
{{- end }}
{{- end }}

{{/* The database URL's Secret: database.existingSecret, else the chart's own Secret from database.url, else
global.postgresql.existingSecret with key global.postgresql.keys.datahub (default "datahub"). */}}
{{- define "datahub.resolveDatabase" -}}
{{- $db := .Values.database }}
{{- $pg := (.Values.global | default dict).postgresql | default dict }}
{{- if kindIs "invalid" $db.existingSecret }}
{{- if and (not $db.url) $pg.existingSecret }}
{{- $_ := set $db "existingSecret" $pg.existingSecret }}
{{- if kindIs "invalid" $db.existingSecretKey }}
{{- $_ := set $db "existingSecretKey" ((($pg.keys | default dict).datahub) | default "datahub") }}
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
{{- define "datahub.checkShared" -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- fail "tls.enabled is true, but tls.existingSecret is empty: name the kubernetes.io/tls Secret with tls.crt and tls.key (under the umbrella chart, global.tls.existingSecret)" }}
{{- end }}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) (not .Values.auth.tokens) }}
{{- fail "auth.enabled is true, but neither auth.existingSecret nor auth.tokens is set: name the Secret holding the tokens file, or give its lines in auth.tokens (under the umbrella chart, global.auth)" }}
{{- end }}
{{- $kafka := .Values.kafka }}
{{- if has $kafka.securityProtocol (list "sasl_plaintext" "sasl_ssl") }}
{{- if not $kafka.sasl.mechanism }}
{{- fail (printf "kafka.sasl.mechanism is empty, but kafka.securityProtocol is %s: set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (under the umbrella chart, global.kafka.sasl.mechanism)" $kafka.securityProtocol) }}
{{- end }}
{{- if not $kafka.sasl.existingSecret }}
{{- fail (printf "kafka.sasl.existingSecret is empty, but kafka.securityProtocol is %s: name the Secret holding the SASL password (under the umbrella chart, global.kafka.sasl.existingSecret)" $kafka.securityProtocol) }}
{{- end }}
{{- if not (or $kafka.sasl.username $kafka.sasl.usernameKey) }}
{{- fail "kafka.sasl.username is empty: set it, or kafka.sasl.usernameKey to read it from kafka.sasl.existingSecret (under the umbrella chart, global.kafka.sasl.*)" }}
{{- end }}
{{- end }}
{{- if and $kafka.tls.clientCertificate (not $kafka.tls.existingSecret) }}
{{- fail "kafka.tls.clientCertificate is true, but kafka.tls.existingSecret is empty: name the Secret holding the client certificate and key" }}
{{- end }}
{{- end }}
