{{/* Names, labels and the few derived values shared by the templates. */}}

{{- define "featurestore.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name; the release name alone when it already contains the chart name. */}}
{{- define "featurestore.fullname" -}}
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

{{- define "featurestore.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "featurestore.selectorLabels" -}}
app.kubernetes.io/name: {{ include "featurestore.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "featurestore.labels" -}}
helm.sh/chart: {{ include "featurestore.chart" . }}
{{ include "featurestore.selectorLabels" . }}
app.kubernetes.io/version: {{ include "featurestore.imageTag" . | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: feature-store
app.kubernetes.io/part-of: plinth
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "featurestore.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "featurestore.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "featurestore.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "featurestore.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "featurestore.imageTag" .) }}
{{- end }}
{{- end }}

{{/* The Secret the chart creates for values given inline (database.url, online.redis.url, auth.tokens). */}}
{{- define "featurestore.secretName" -}}
{{- include "featurestore.fullname" . }}
{{- end }}

{{/* Whether the online store is Redis. */}}
{{- define "featurestore.redis" -}}
{{- if eq .Values.online.store "redis" }}true{{ end }}
{{- end }}

{{/* Whether the chart creates the Redis URL's Secret entry. */}}
{{- define "featurestore.createRedisSecret" -}}
{{- if and (include "featurestore.redis" .) (not .Values.online.redis.existingSecret) }}true{{ end }}
{{- end }}

{{- define "featurestore.createSecret" -}}
{{- if or (not .Values.database.existingSecret) (include "featurestore.createRedisSecret" .) (and .Values.auth.enabled (not .Values.auth.existingSecret)) }}true{{ end }}
{{- end }}

{{- define "featurestore.databaseSecretName" -}}
{{- default (include "featurestore.secretName" .) .Values.database.existingSecret }}
{{- end }}

{{- define "featurestore.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}database-url{{ end }}
{{- end }}

{{- define "featurestore.redisSecretName" -}}
{{- default (include "featurestore.secretName" .) .Values.online.redis.existingSecret }}
{{- end }}

{{- define "featurestore.redisSecretKey" -}}
{{- if .Values.online.redis.existingSecret }}{{ .Values.online.redis.existingSecretKey }}{{ else }}redis-url{{ end }}
{{- end }}

{{- define "featurestore.authSecretName" -}}
{{- default (include "featurestore.secretName" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "featurestore.authSecretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}auth-tokens{{ end }}
{{- end }}

{{/*
The embedded online store is a SQLite file inside one pod: a second pod would serve other values. Refuse
more than one pod (replicaCount or an HPA) with it.
*/}}
{{- define "featurestore.checkOnlineStore" -}}
{{- if eq .Values.online.store "embedded" }}
{{- if .Values.autoscaling.enabled }}
{{- fail "online.store embedded keeps online values in one pod's SQLite file, so it cannot scale: set autoscaling.enabled=false, or use online.store redis" }}
{{- end }}
{{- if gt (.Values.replicaCount | int) 1 }}
{{- fail (printf "online.store embedded keeps online values in one pod's SQLite file, so replicaCount (%d) must be 0 or 1: set replicaCount=1, or use online.store redis" (.Values.replicaCount | int)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Whether the pod mounts TLS material for Redis at /etc/plinth/redis (a CA, a client certificate). */}}
{{- define "featurestore.redisTls" -}}
{{- $tls := .Values.online.redis.tls }}
{{- if and (include "featurestore.redis" .) (or $tls.ca.existingSecret $tls.clientCert.existingSecret) }}true{{ end }}
{{- end }}

{{/*
TLS material for Redis needs a rediss:// URL; the service refuses it with redis:// at start. Checked here
when the URL is given inline (a URL in an existing Secret is only seen by the service).
*/}}
{{- define "featurestore.checkRedisTls" -}}
{{- $redis := .Values.online.redis }}
{{- if and (include "featurestore.redisTls" .) (not $redis.existingSecret) (not (hasPrefix "rediss://" $redis.url)) }}
{{- fail "online.redis.tls is set, but online.redis.url is not rediss://: use a rediss:// URL to reach Redis over TLS, or clear online.redis.tls.ca.existingSecret and online.redis.tls.clientCert.existingSecret" }}
{{- end }}
{{- end }}

{{/* The data hub's gRPC URL: the value, or the datahub chart's Service of this release. */}}
{{- define "featurestore.datahubUrl" -}}
{{- if .Values.datahub.url }}
{{- .Values.datahub.url }}
{{- else }}
{{- printf "http://%s-datahub:7002" .Release.Name }}
{{- end }}
{{- end }}

{{/* The lake root's scheme: s3, gs or file. */}}
{{- define "featurestore.lakeScheme" -}}
{{- (splitList "://" (required "lake.root is required: s3://bucket/prefix, gs://bucket/prefix or file:///abs/dir (under the umbrella chart, global.objectStore.lakeRoot)" .Values.lake.root)) | first }}
{{- end }}

{{/* A file:// root's directory, where its volume is mounted. */}}
{{- define "featurestore.lakeFilePath" -}}
{{- .Values.lake.root | trimPrefix "file://" | trimSuffix "/" | default "/" }}
{{- end }}

{{/* Whether the lake's credentials Secret is used (a Secret is named and the scheme takes credentials). */}}
{{- define "featurestore.lakeCredentials" -}}
{{- $scheme := include "featurestore.lakeScheme" . }}
{{- if .Values.lake.credentials.existingSecret }}
{{- if eq $scheme "file" }}
{{- fail "lake.credentials.existingSecret is set, but lake.root is a file:// directory, which takes no credentials: clear it, or use an s3:// or gs:// root" }}
{{- end }}
{{- true }}
{{- end }}
{{- end }}

{{/* server.shutdown_grace_period in whole seconds (the schema only admits "<N>s"). */}}
{{- define "featurestore.shutdownGraceSeconds" -}}
{{- .Values.config.server.shutdownGracePeriod | trimSuffix "s" | int }}
{{- end }}

{{/* Long enough for the preStop sleep plus the service's own drain, with a margin for process exit. */}}
{{- define "featurestore.terminationGracePeriodSeconds" -}}
{{- $needed := add (include "featurestore.shutdownGraceSeconds" . | int) (.Values.preStopSleepSeconds | int) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $needed 10 }}
{{- else if le (.Values.terminationGracePeriodSeconds | int) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + config.server.shutdownGracePeriod (%d s), or the kubelet kills the feature store mid-drain" (.Values.terminationGracePeriodSeconds | int) $needed) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds | int }}
{{- end }}
{{- end }}

{{/* Probe mode after resolving `auto` (see values.yaml, probes). */}}
{{- define "featurestore.probeMode" -}}
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
Liveness and startup ask whether the server runs; readiness whether it can serve (database and online
store reachable, registry loaded).
*/}}
{{- define "featurestore.probeAction" -}}
{{- $root := .root }}
{{- $mode := include "featurestore.probeMode" $root }}
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
{{- define "featurestore.configChecksum" -}}
{{- include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}

{{/*
Settings an umbrella chart shares through `global` (helm/plinth: global.postgresql, kafka, redis, objectStore,
tls, auth, serviceToken, serviceCa). Each shared key is this chart's own value when set (not null), else the
global one, else the default below; maps (object-store options) merge key by key. "feature-store.resolveGlobals"
writes the result into .Values in place and every template includes it first, so the rest of the chart
reads plain .Values; a second call changes nothing (resolved values are then the chart's own). An inline
secret value of the chart's own (database.url, auth.tokens, online.redis.url) wins over a global Secret.
*/}}
{{- define "feature-store.sharedDefaults" -}}
online:
  redis:
    existingSecret: ''
    existingSecretKey: url
    url: ''
    tls:
      ca:
        existingSecret: ''
        existingSecretKey: ca.crt
      clientCert:
        existingSecret: ''
        certKey: tls.crt
        keyKey: tls.key
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

{{- define "feature-store.resolveGlobals" -}}
{{- $g := .Values.global | default dict }}
{{- $os := $g.objectStore | default dict }}
{{- $d := include "feature-store.sharedDefaults" . | fromYaml }}
{{- include "feature-store.resolveDatabase" . }}
{{- include "feature-store.resolveInline" (list .Values.auth "tokens") }}
{{- $_ := set .Values "tls" (include "feature-store.coalesce" (list .Values.tls $g.tls $d.tls) | fromJson) }}
{{- $_ = set .Values "auth" (include "feature-store.coalesce" (list .Values.auth $g.auth $d.auth) | fromJson) }}
{{- $_ = set .Values.datahub "token" (include "feature-store.coalesce" (list .Values.datahub.token $g.serviceToken $d.token) | fromJson) }}
{{- $_ = set .Values.datahub "ca" (include "feature-store.coalesce" (list .Values.datahub.ca $g.serviceCa $d.ca) | fromJson) }}
{{- $_ = set .Values "lake" (include "feature-store.coalesce" (list .Values.lake (dict "root" $os.lakeRoot "options" $os.options "credentials" $os.credentials) $d.lake) | fromJson) }}
{{- include "feature-store.resolveInline" (list .Values.online.redis "url") }}
{{- $_ = set .Values.online "redis" (include "feature-store.coalesce" (list .Values.online.redis $g.redis $d.online.redis) | fromJson) }}
{{- include "feature-store.checkShared" . }}
{{- end }}

{{/* feature-store.coalesce (list OWN GLOBAL DEFAULT): JSON of the three maps merged, per key the first non-null. */}}
{{- define "feature-store.coalesce" -}}
{{- $own := index . 0 | default dict }}
{{- $global := index . 1 | default dict }}
{{- $default := index . 2 | default dict }}
{{- $out := dict }}
{{- range $k := concat (keys $own) (keys $global) (keys $default) | uniq }}
{{- $layers := list (index $own $k) (index $global $k) (index $default $k) }}
{{- if or (kindIs "map" (index $layers 0)) (kindIs "map" (index $layers 1)) (kindIs "map" (index $layers 2)) }}
{{- $_ := set $out $k (include "feature-store.coalesce" $layers | fromJson) }}
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

{{/* feature-store.resolveInline (list BLOCK KEY): an inline BLOCK.KEY of the chart's own, with BLOCK.existingSecret
unset, means "no Secret": global's Secret must not shadow it. */}}
{{- define "feature-store.resolveInline" -}}
{{- $block := index . 0 }}
{{- if and (kindIs "invalid" $block.existingSecret) (index $block (index . 1)) }}
{{- $_ := set $block "existingSecret" "" }}
{{- end }}
{{- end }}

{{/* The database URL's Secret: database.existingSecret, else the chart's own Secret from database.url, else
global.postgresql.existingSecret with key global.postgresql.keys.featureStore (default "feature-store"). */}}
{{- define "feature-store.resolveDatabase" -}}
{{- $db := .Values.database }}
{{- $pg := (.Values.global | default dict).postgresql | default dict }}
{{- if kindIs "invalid" $db.existingSecret }}
{{- if and (not $db.url) $pg.existingSecret }}
{{- $_ := set $db "existingSecret" $pg.existingSecret }}
{{- if kindIs "invalid" $db.existingSecretKey }}
{{- $_ := set $db "existingSecretKey" ((($pg.keys | default dict).featureStore) | default "feature-store") }}
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
{{- define "feature-store.checkShared" -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- fail "tls.enabled is true, but tls.existingSecret is empty: name the kubernetes.io/tls Secret with tls.crt and tls.key (under the umbrella chart, global.tls.existingSecret)" }}
{{- end }}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) (not .Values.auth.tokens) }}
{{- fail "auth.enabled is true, but neither auth.existingSecret nor auth.tokens is set: name the Secret holding the tokens file, or give its lines in auth.tokens (under the umbrella chart, global.auth)" }}
{{- end }}
{{- end }}
