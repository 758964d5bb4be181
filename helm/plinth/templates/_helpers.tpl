{{/* The umbrella renders no workload of its own: its templates check that the services agree. */}}

{{/* The service charts of this release: values key, chart name (its Service is <release>-<chart>), gRPC port. */}}
{{- define "plinth.services" -}}
schema-registry: 7001
datahub: 7002
feature-store: 7003
orchestrator: 7004
serving: 8001
{{- end }}

{{/*
plinth.checkPeer: a service's URL of a peer. With the peer in this release it must name the peer's Service
over https:// when global.tls.enabled (its host is checked in NOTES.txt: `helm lint` renders under another release
name); with the peer disabled it must be set (an instance outside the release).
  dict "root" $ "service" "datahub" "key" "schemaRegistry" "peer" "schema-registry"
*/}}
{{- define "plinth.checkPeer" -}}
{{- $root := .root }}
{{- $svc := index $root.Values .service }}
{{- $peerValues := index $root.Values .peer }}
{{- $url := (index $svc .key).url | default "" }}
{{- $where := printf "%s.%s.url" .service .key }}
{{- $peerEnabled := $peerValues.enabled }}
{{- $ports := include "plinth.services" $root | fromYaml }}
{{- $port := index $ports .peer }}
{{- if not $peerEnabled }}
{{- if not $url }}
{{- fail (printf "%s is empty, but %s.enabled is false: set it to the URL of the %s this release should use (or enable %s)" $where .peer .peer .peer) }}
{{- end }}
{{- else }}
{{- $svcName := printf "%s-%s" $root.Release.Name .peer }}
{{- if and $root.Values.global.tls.enabled (not (hasPrefix "https://" $url)) }}
{{- fail (printf "%s must be https://%s:%d (global.tls.enabled is true, so %s serves TLS only), got %q" $where $svcName (int $port) .peer $url) }}
{{- end }}
{{- end }}
{{- end }}

{{/* plinth.checkEqual: dict "what" "datahub.lake.root" "value" X "global" "global.objectStore.lakeRoot" "want" Y */}}
{{- define "plinth.checkEqual" -}}
{{- if ne (toJson .value) (toJson .want) }}
{{- fail (printf "%s (%s) differs from %s (%s): set it once in global and alias it into the service (as production-values.yaml does), or set both to the same value" .what (toJson .value) .global (toJson .want)) }}
{{- end }}
{{- end }}
