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
plinth.checkPeer: a service's URL of a peer. With the peer in this release it must be https:// when the peer
serves TLS (plinth.tlsEnabled; its host is checked in NOTES.txt: `helm lint` renders under another release
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
{{- if and (include "plinth.tlsEnabled" (dict "root" $root "service" .peer)) (not (hasPrefix "https://" $url)) }}
{{- fail (printf "%s must be https://%s:%d (%s serves TLS only: global.tls.enabled or %s.tls.enabled is true), got %q" $where $svcName (int $port) .peer .peer $url) }}
{{- end }}
{{- end }}
{{- end }}

{{/* plinth.tlsEnabled: whether a service of this release serves TLS: its own tls.enabled when set, else
global.tls.enabled (as the service chart resolves it). Empty for false.
  dict "root" $ "service" "datahub" */}}
{{- define "plinth.tlsEnabled" -}}
{{- $own := ((index .root.Values .service).tls | default dict).enabled }}
{{- if kindIs "invalid" $own }}{{ if .root.Values.global.tls.enabled }}true{{ end }}{{ else if $own }}true{{ end }}
{{- end }}
