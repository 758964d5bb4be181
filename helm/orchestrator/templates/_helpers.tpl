{{/* Names, labels and the few derived values shared by the templates. */}}

{{- define "orchestrator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name; the release name alone when it already contains the chart name. */}}
{{- define "orchestrator.fullname" -}}
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

{{- define "orchestrator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "orchestrator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "orchestrator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "orchestrator.labels" -}}
helm.sh/chart: {{ include "orchestrator.chart" . }}
{{ include "orchestrator.selectorLabels" . }}
app.kubernetes.io/version: {{ include "orchestrator.imageTag" . | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: orchestrator
app.kubernetes.io/part-of: plinth
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "orchestrator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "orchestrator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "orchestrator.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "orchestrator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "orchestrator.imageTag" .) }}
{{- end }}
{{- end }}

{{/* The Secret the chart creates for values given inline (database.url, auth.tokens). */}}
{{- define "orchestrator.secretName" -}}
{{- include "orchestrator.fullname" . }}
{{- end }}

{{/* Whether the database URL comes from a Secret (PostgreSQL), not from the ConfigMap (embedded SQLite). */}}
{{- define "orchestrator.postgres" -}}
{{- if not .Values.database.embedded }}true{{ end }}
{{- end }}

{{- define "orchestrator.createSecret" -}}
{{- if or (and (include "orchestrator.postgres" .) (not .Values.database.existingSecret)) (and .Values.auth.enabled (not .Values.auth.existingSecret)) }}true{{ end }}
{{- end }}

{{- define "orchestrator.databaseSecretName" -}}
{{- default (include "orchestrator.secretName" .) .Values.database.existingSecret }}
{{- end }}

{{- define "orchestrator.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}database-url{{ end }}
{{- end }}

{{- define "orchestrator.authSecretName" -}}
{{- default (include "orchestrator.secretName" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "orchestrator.authSecretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}auth-tokens{{ end }}
{{- end }}

{{/*
The embedded database is a SQLite file inside one pod: a second pod would schedule from other state and
start the same runs again. Refuse more than one pod (replicaCount or an HPA) with it.
*/}}
{{- define "orchestrator.checkDatabase" -}}
{{- if .Values.database.embedded }}
{{- if .Values.autoscaling.enabled }}
{{- fail "database.embedded keeps pipelines and runs in one pod's SQLite file, so it cannot scale: set autoscaling.enabled=false, or use PostgreSQL (database.url or database.existingSecret)" }}
{{- end }}
{{- if gt (.Values.replicaCount | int) 1 }}
{{- fail (printf "database.embedded keeps pipelines and runs in one pod's SQLite file, so replicaCount (%d) must be 0 or 1: set replicaCount=1, or use PostgreSQL (database.url or database.existingSecret)" (.Values.replicaCount | int)) }}
{{- end }}
{{- else if and (not .Values.database.existingSecret) (not .Values.database.url) }}
{{- fail "database.url is required when database.existingSecret is empty (postgres://USER:PASSWORD@HOST:5432/DB), or set database.embedded=true for a one-pod trial" }}
{{- end }}
{{- end }}

{{/* Whether attempts run as Kubernetes Jobs. */}}
{{- define "orchestrator.kubernetesExecutor" -}}
{{- if eq .Values.executor.kind "kubernetes" }}true{{ end }}
{{- end }}

{{/* The namespace of the Jobs: the value, or the release's. */}}
{{- define "orchestrator.jobNamespace" -}}
{{- default .Release.Namespace .Values.executor.kubernetes.namespace }}
{{- end }}

{{/* The service account of the Jobs' pods. */}}
{{- define "orchestrator.taskServiceAccountName" -}}
{{- $task := .Values.executor.kubernetes.taskServiceAccount }}
{{- if $task.create }}
{{- default (printf "%s-task" (include "orchestrator.fullname" .) | trunc 63 | trimSuffix "-") $task.name }}
{{- else }}
{{- default "default" $task.name }}
{{- end }}
{{- end }}

{{/* Whether the orchestrator's service account token is mounted: the Kubernetes executor needs it. */}}
{{- define "orchestrator.automountToken" -}}
{{- $automount := .Values.serviceAccount.automountServiceAccountToken }}
{{- if kindIs "invalid" $automount }}
{{- ternary "true" "false" (eq .Values.executor.kind "kubernetes") }}
{{- else if and (not $automount) (include "orchestrator.kubernetesExecutor" .) }}
{{- fail "serviceAccount.automountServiceAccountToken is false, but executor.kind kubernetes creates and watches Jobs through the Kubernetes API with that token: set it to true (or null), or use executor.kind local" }}
{{- else }}
{{- $automount }}
{{- end }}
{{- end }}

{{/*
The peers the platform task types call, as a YAML list: the values key, its timeout's key under config, the TOML block, the chart whose
Service is the default address, its gRPC port, and the directory of its token and CA under /etc/plinth.
*/}}
{{- define "orchestrator.peers" -}}
- {key: featureStore, config: featureStore, toml: feature_store, chart: feature-store, port: 7003, dir: feature-store}
- {key: serving, config: serving, toml: serving, chart: serving, port: 8001, dir: serving}
- {key: datahub, config: datahub, toml: datahub, chart: datahub, port: 7002, dir: datahub}
- {key: schemaRegistry, config: registry, toml: registry, chart: schema-registry, port: 7001, dir: registry}
{{- end }}

{{/* A peer's gRPC URL: the value, or its chart's Service of this release. Call with (dict "root" $ "peer" PEER). */}}
{{- define "orchestrator.peerUrl" -}}
{{- $values := index .root.Values .peer.key }}
{{- if $values.url }}
{{- $values.url }}
{{- else }}
{{- printf "http://%s-%s:%d" .root.Release.Name .peer.chart (.peer.port | int) }}
{{- end }}
{{- end }}

{{/* Whether a peer needs a volume (a token or a CA from a Secret). Call with (dict "root" $ "peer" PEER). */}}
{{- define "orchestrator.peerVolume" -}}
{{- $values := index .root.Values .peer.key }}
{{- if or $values.token.existingSecret $values.ca.existingSecret }}true{{ end }}
{{- end }}

{{/* The object-store roots that are set, as a YAML list of {key, root, scheme}. */}}
{{- define "orchestrator.storageRoots" -}}
{{- range $key := list "logs" "models" "lake" }}
{{- $root := (index $.Values $key).root }}
{{- if $root }}
- {key: {{ $key }}, root: {{ $root | quote }}, scheme: {{ splitList "://" $root | first }}}
{{- end }}
{{- end }}
{{- end }}

{{/* Whether any root has this scheme. Call with (dict "root" $ "scheme" "s3|gs|file"). */}}
{{- define "orchestrator.anyScheme" -}}
{{- range (include "orchestrator.storageRoots" .root | fromYamlArray) }}
{{- if eq .scheme $.scheme }}true{{ end }}
{{- end }}
{{- end }}

{{/*
Rules across the object-store keys: the three roots are required; a file:// root must lie under the file volume
(the only writable place of the pod); credentials need a root that takes them.
*/}}
{{- define "orchestrator.checkStorage" -}}
{{- $_ := required "logs.root is required: s3://bucket/prefix, gs://bucket/prefix or file:///abs/dir (task logs are stored there; under the umbrella chart, global.objectStore.logsRoot)" .Values.logs.root }}
{{- $_ := required "models.root is required: s3://bucket/prefix, gs://bucket/prefix or file:///abs/dir (the model repository `train` writes and `deploy-model` reads; under the umbrella chart, global.objectStore.modelsRoot)" .Values.models.root }}
{{- $_ := required "lake.root is required: s3://bucket/prefix, gs://bucket/prefix or file:///abs/dir (the data hub's lake, which `batch-score` reads and writes; under the umbrella chart, global.objectStore.lakeRoot)" .Values.lake.root }}
{{- $mountPath := .Values.storage.fileVolume.mountPath | trimSuffix "/" }}
{{- range (include "orchestrator.storageRoots" . | fromYamlArray) }}
{{- if eq .scheme "file" }}
{{- $path := .root | trimPrefix "file://" | trimSuffix "/" }}
{{- if not (or (eq $path $mountPath) (hasPrefix (printf "%s/" $mountPath) $path)) }}
{{- fail (printf "%s.root (%s) is a file:// directory outside storage.fileVolume.mountPath (%s), which is the pod's only writable storage volume: use file://%s/%s, or change storage.fileVolume.mountPath" .key .root $mountPath $mountPath .key) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.storage.credentials.existingSecret (not (include "orchestrator.anyScheme" (dict "root" . "scheme" "s3"))) (not (include "orchestrator.anyScheme" (dict "root" . "scheme" "gs"))) }}
{{- fail "storage.credentials.existingSecret is set, but no root (logs, models, lake) is s3:// or gs://, and file:// roots take no credentials: clear it, or use an s3:// or gs:// root" }}
{{- end }}
{{- end }}

{{/* server.shutdown_grace_period in whole seconds (the schema only admits "<N>s"). */}}
{{- define "orchestrator.shutdownGraceSeconds" -}}
{{- .Values.config.server.shutdownGracePeriod | trimSuffix "s" | int }}
{{- end }}

{{/* Long enough for the preStop sleep plus the service's own drain, with a margin for process exit. */}}
{{- define "orchestrator.terminationGracePeriodSeconds" -}}
{{- $needed := add (include "orchestrator.shutdownGraceSeconds" . | int) (.Values.preStopSleepSeconds | int) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $needed 10 }}
{{- else if le (.Values.terminationGracePeriodSeconds | int) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + config.server.shutdownGracePeriod (%d s), or the kubelet kills the orchestrator mid-drain" (.Values.terminationGracePeriodSeconds | int) $needed) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds | int }}
{{- end }}
{{- end }}

{{/* Probe mode after resolving `auto` (see values.yaml, probes). */}}
{{- define "orchestrator.probeMode" -}}
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
Liveness and startup ask whether the server runs; readiness whether it can serve (database
reachable, migrations done).
*/}}
{{- define "orchestrator.probeAction" -}}
{{- $root := .root }}
{{- $mode := include "orchestrator.probeMode" $root }}
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
{{- define "orchestrator.configChecksum" -}}
{{- include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}

{{/* An object store's `[<block>.options]` table. Call with (dict "block" NAME "options" MAP). */}}
{{- define "orchestrator.storageOptions" -}}
[{{ .block }}.options]
{{- range $key, $value := .options }}
{{ $key | toJson }} = {{ $value | toString | toJson }}
{{- end }}
{{- end }}

{{/* The container's environment: the secrets that never go into the ConfigMap, then extraEnv. */}}
{{- define "orchestrator.env" -}}
{{- $storage := .Values.storage }}
{{- if include "orchestrator.postgres" . }}
- name: PLINTH_DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ include "orchestrator.databaseSecretName" . }}
      key: {{ include "orchestrator.databaseSecretKey" . }}
{{- end }}
{{- if and $storage.credentials.existingSecret (include "orchestrator.anyScheme" (dict "root" . "scheme" "s3")) }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $storage.credentials.existingSecret }}
      key: {{ $storage.credentials.aws.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $storage.credentials.existingSecret }}
      key: {{ $storage.credentials.aws.secretAccessKeyKey }}
{{- with $storage.credentials.aws.sessionTokenKey }}
- name: AWS_SESSION_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $storage.credentials.existingSecret }}
      key: {{ . }}
{{- end }}
{{- end }}
{{- if and $storage.credentials.existingSecret (include "orchestrator.anyScheme" (dict "root" . "scheme" "gs")) }}
- name: GOOGLE_SERVICE_ACCOUNT
  value: /etc/plinth/storage/service-account.json
{{- end }}
{{- with .Values.extraEnv }}
{{- toYaml . | nindent 0 }}
{{- end }}
{{- end }}

{{/*
Settings an umbrella chart shares through `global` (helm/plinth: global.postgresql, kafka, redis, objectStore,
tls, auth, serviceToken, serviceCa). Each shared key is this chart's own value when set (not null), else the
global one, else the default below; maps (object-store options) merge key by key. "orchestrator.resolveGlobals"
writes the result into .Values in place and every template includes it first, so the rest of the chart
reads plain .Values; a second call changes nothing (resolved values are then the chart's own). An inline
secret value of the chart's own (database.url, auth.tokens) wins over a global Secret.
*/}}
{{- define "orchestrator.sharedDefaults" -}}
logs:
  root: ''
models:
  root: ''
lake:
  root: ''
storage:
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

{{- define "orchestrator.resolveGlobals" -}}
{{- $g := .Values.global | default dict }}
{{- $os := $g.objectStore | default dict }}
{{- $d := include "orchestrator.sharedDefaults" . | fromYaml }}
{{- include "orchestrator.resolveDatabase" . }}
{{- include "orchestrator.resolveInline" (list .Values.auth "tokens") }}
{{- $_ := set .Values "tls" (include "orchestrator.coalesce" (list .Values.tls $g.tls $d.tls) | fromJson) }}
{{- $_ = set .Values "auth" (include "orchestrator.coalesce" (list .Values.auth $g.auth $d.auth) | fromJson) }}
{{- $_ = set .Values.featureStore "token" (include "orchestrator.coalesce" (list .Values.featureStore.token $g.serviceToken $d.token) | fromJson) }}
{{- $_ = set .Values.featureStore "ca" (include "orchestrator.coalesce" (list .Values.featureStore.ca $g.serviceCa $d.ca) | fromJson) }}
{{- $_ = set .Values.serving "token" (include "orchestrator.coalesce" (list .Values.serving.token $g.serviceToken $d.token) | fromJson) }}
{{- $_ = set .Values.serving "ca" (include "orchestrator.coalesce" (list .Values.serving.ca $g.serviceCa $d.ca) | fromJson) }}
{{- $_ = set .Values.datahub "token" (include "orchestrator.coalesce" (list .Values.datahub.token $g.serviceToken $d.token) | fromJson) }}
{{- $_ = set .Values.datahub "ca" (include "orchestrator.coalesce" (list .Values.datahub.ca $g.serviceCa $d.ca) | fromJson) }}
{{- $_ = set .Values.schemaRegistry "token" (include "orchestrator.coalesce" (list .Values.schemaRegistry.token $g.serviceToken $d.token) | fromJson) }}
{{- $_ = set .Values.schemaRegistry "ca" (include "orchestrator.coalesce" (list .Values.schemaRegistry.ca $g.serviceCa $d.ca) | fromJson) }}
{{- $_ = set .Values "logs" (include "orchestrator.coalesce" (list .Values.logs (dict "root" $os.logsRoot "options" $os.options) $d.logs) | fromJson) }}
{{- $_ = set .Values "models" (include "orchestrator.coalesce" (list .Values.models (dict "root" $os.modelsRoot "options" $os.options) $d.models) | fromJson) }}
{{- $_ = set .Values "lake" (include "orchestrator.coalesce" (list .Values.lake (dict "root" $os.lakeRoot "options" $os.options) $d.lake) | fromJson) }}
{{- $_ = set .Values.storage "credentials" (include "orchestrator.coalesce" (list .Values.storage.credentials $os.credentials $d.storage.credentials) | fromJson) }}
{{- include "orchestrator.checkShared" . }}
{{- end }}

{{/* orchestrator.coalesce (list OWN GLOBAL DEFAULT): JSON of the three maps merged, per key the first non-null. */}}
{{- define "orchestrator.coalesce" -}}
{{- $own := index . 0 | default dict }}
{{- $global := index . 1 | default dict }}
{{- $default := index . 2 | default dict }}
{{- $out := dict }}
{{- range $k := concat (keys $own) (keys $global) (keys $default) | uniq }}
{{- $layers := list (index $own $k) (index $global $k) (index $default $k) }}
{{- if or (kindIs "map" (index $layers 0)) (kindIs "map" (index $layers 1)) (kindIs "map" (index $layers 2)) }}
{{- $_ := set $out $k (include "orchestrator.coalesce" $layers | fromJson) }}
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

{{/* orchestrator.resolveInline (list BLOCK KEY): an inline BLOCK.KEY of the chart's own, with BLOCK.existingSecret
unset, means "no Secret": global's Secret must not shadow it. */}}
{{- define "orchestrator.resolveInline" -}}
{{- $block := index . 0 }}
{{- if and (kindIs "invalid" $block.existingSecret) (index $block (index . 1)) }}
{{- $_ := set $block "existingSecret" "" }}
{{- end }}
{{- end }}

{{/* The database URL's Secret: database.existingSecret, else the chart's own Secret from database.url, else
global.postgresql.existingSecret with key global.postgresql.keys.orchestrator (default "orchestrator"). */}}
{{- define "orchestrator.resolveDatabase" -}}
{{- $db := .Values.database }}
{{- $pg := (.Values.global | default dict).postgresql | default dict }}
{{- if kindIs "invalid" $db.existingSecret }}
{{- if and (not $db.url) $pg.existingSecret (not $db.embedded) }}
{{- $_ := set $db "existingSecret" $pg.existingSecret }}
{{- if kindIs "invalid" $db.existingSecretKey }}
{{- $_ := set $db "existingSecretKey" ((($pg.keys | default dict).orchestrator) | default "orchestrator") }}
{{- end }}
{{- else }}
{{- $_ := set $db "existingSecret" "" }}
{{- end }}
{{- end }}
{{- if kindIs "invalid" $db.existingSecretKey }}
{{- $_ := set $db "existingSecretKey" "url" }}
{{- end }}
{{- if and (not $db.existingSecret) (not $db.url) (not $db.embedded) }}
{{- fail "database.url is empty: set database.url (postgres://USER:PASSWORD@HOST:5432/DB) or database.existingSecret, or database.embedded=true for a one-pod trial; under the umbrella chart, global.postgresql.existingSecret" }}
{{- end }}
{{- end }}

{{/* What the schema cannot check before globals are applied: the resolved values' required pairs. */}}
{{- define "orchestrator.checkShared" -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- fail "tls.enabled is true, but tls.existingSecret is empty: name the kubernetes.io/tls Secret with tls.crt and tls.key (under the umbrella chart, global.tls.existingSecret)" }}
{{- end }}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) (not .Values.auth.tokens) }}
{{- fail "auth.enabled is true, but neither auth.existingSecret nor auth.tokens is set: name the Secret holding the tokens file, or give its lines in auth.tokens (under the umbrella chart, global.auth)" }}
{{- end }}
{{- end }}
