{{/*
Pod spec of a one-off `wq` CLI pod as JSON, for `kubectl run --overrides` in NOTES.txt.
Usage: include "wq.cliPodOverrides" (dict "ctx" $ "args" (list "status" "--watch"))
   or: include "wq.cliPodOverrides" (dict "ctx" $ "command" (list "sleep" "3600"))
*/}}
{{- define "wq.cliPodOverrides" -}}
{{- $ctx := .ctx }}
{{- /* No "stdin" and no attach: the pod runs to its end by itself, and NOTES waits for it
  and reads its log. (`kubectl run -i` raced short pods: it sometimes printed nothing.) */}}
{{- $command := .command | default (prepend (.args | default list) "wq") }}
{{- $container := dict "name" "wq" "image" (include "wq.image" $ctx) "command" $command }}
{{- $_ := set $container "env" (include "wq.connectionEnv" $ctx | fromYamlArray) }}
{{- $_ := set $container "securityContext" $ctx.Values.securityContext }}
{{- $spec := dict "automountServiceAccountToken" false "enableServiceLinks" false "securityContext" $ctx.Values.podSecurityContext "containers" (list $container) }}
{{- if include "wq.redis.caSecretName" $ctx }}
{{- $_ := set $container "volumeMounts" (include "wq.redis.caVolumeMounts" $ctx | fromYamlArray) }}
{{- $_ := set $spec "volumes" (include "wq.redis.caVolumes" $ctx | fromYamlArray) }}
{{- end }}
{{- if $ctx.Values.imagePullSecrets }}
{{- $_ := set $spec "imagePullSecrets" $ctx.Values.imagePullSecrets }}
{{- end }}
{{- dict "spec" $spec | toJson }}
{{- end }}
