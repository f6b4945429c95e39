{{/*
Helpers of the bundled Redis (redis.enabled), kept beside its templates, and the checks of
externalRedis against it. How pods reach Redis, bundled or external, is in ../_helpers.tpl:
every component that runs `wq` needs it.
*/}}

{{- define "wq.redis.image" -}}
{{- include "wq.imageRef" (dict "image" .Values.redis.image "defaultTag" "") }}
{{- end }}

{{/*
Redis maxmemory: redis.maxmemory, else 85% of the container's memory limit (the rest is
headroom for fragmentation and client buffers), else none. With the noeviction policy a full
Redis refuses writes, which wq reports with the value to raise, instead of being OOM-killed
and losing the run.
*/}}
{{- define "wq.redis.maxmemory" -}}
{{- $redis := .Values.redis -}}
{{- if $redis.maxmemory -}}
{{- $redis.maxmemory -}}
{{- else -}}
{{- $limit := "" -}}
{{- with $redis.resources }}{{ with .limits }}{{ with .memory }}{{ $limit = toString . }}{{ end }}{{ end }}{{ end -}}
{{- if $limit -}}
{{- $units := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 -}}
{{- $pattern := "^([0-9]+(?:[.][0-9]+)?)([A-Za-z]*)$" -}}
{{- $unit := regexReplaceAll $pattern $limit "${2}" -}}
{{- if or (not (regexMatch $pattern $limit)) (not (hasKey $units $unit)) -}}
{{- fail (printf "redis.resources.limits.memory %q: give a number with an optional k/M/G/T or Ki/Mi/Gi/Ti suffix, or set redis.maxmemory" $limit) -}}
{{- end -}}
{{- mulf (float64 (regexReplaceAll $pattern $limit "${1}")) (get $units $unit) 0.85 | floor | int64 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Password of the generated Secret, base64-encoded: the one already in the cluster (so that
`helm upgrade` keeps it), else a new random one.
*/}}
{{- define "wq.redis.generatedPassword" -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "wq.redis.fullname" .) }}
{{- if and $secret $secret.data (index $secret.data "redis-password") }}
{{- index $secret.data "redis-password" }}
{{- else }}
{{- randAlphaNum 32 | b64enc }}
{{- end }}
{{- end }}

{{- define "wq.validateValues.externalRedis" -}}
{{- $ext := .Values.externalRedis }}
{{- if .Values.redis.enabled }}
{{- if or $ext.url $ext.host $ext.existingSecret $ext.tlsCaSecret -}}
wq: externalRedis is only used with redis.enabled=false; set redis.enabled=false to use an external Redis.
{{- end }}
{{- else }}
{{- if and (not $ext.url) (not $ext.host) -}}
wq: redis.enabled=false needs externalRedis.url (redis://host:port/db or rediss://...) or externalRedis.host.
{{- else if and $ext.url $ext.host -}}
wq: set externalRedis.url or externalRedis.host, not both.
{{- else if regexMatch "^rediss?://[^/@]*:[^/@]*@" $ext.url -}}
wq: externalRedis.url must not contain a password (it would be readable in the pod spec); put it in a Secret named by externalRedis.existingSecret.
{{- end }}
{{- end }}
{{- end }}

{{/* A CA certificate is only used over TLS (wq refuses one for redis://). */}}
{{- define "wq.validateValues.externalRedisCa" -}}
{{- $ext := .Values.externalRedis }}
{{- if and (not .Values.redis.enabled) $ext.tlsCaSecret }}
{{- if and $ext.url (not (hasPrefix "rediss://" $ext.url)) -}}
wq: externalRedis.tlsCaSecret is for TLS: externalRedis.url must be rediss://, not {{ $ext.url }}.
{{- else if and (not $ext.url) (not $ext.tls) -}}
wq: externalRedis.tlsCaSecret is for TLS: set externalRedis.tls=true (or a rediss:// externalRedis.url).
{{- end }}
{{- end }}
{{- end }}

{{/* Persistence keeps the append-only file; its init container needs the user to give the volume to. */}}
{{- define "wq.validateValues.redisPersistence" -}}
{{- $redis := .Values.redis }}
{{- $messages := list }}
{{- if and $redis.enabled $redis.persistence.enabled }}
{{- if not $redis.appendOnly.enabled }}
{{- $messages = append $messages "wq: redis.persistence.enabled keeps Redis' append-only file on a volume: it needs redis.appendOnly.enabled=true." }}
{{- end }}
{{- if $redis.persistence.volumePermissions.enabled }}
{{- $ctx := $redis.podSecurityContext | default dict }}
{{- if or (kindIs "invalid" $ctx.runAsUser) (le (int64 $ctx.runAsUser) 0) }}
{{- $messages = append $messages "wq: redis.persistence.volumePermissions gives the volume to Redis' user: set redis.podSecurityContext.runAsUser (not root, e.g. 999)." }}
{{- end }}
{{- $group := $ctx.fsGroup | default $ctx.runAsGroup }}
{{- if or (kindIs "invalid" $group) (le (int64 $group) 0) }}
{{- $messages = append $messages "wq: redis.persistence.volumePermissions gives the volume to Redis' group: set redis.podSecurityContext.fsGroup or runAsGroup (not 0, e.g. 999)." }}
{{- end }}
{{- end }}
{{- end }}
{{- join "\n" $messages }}
{{- end }}
