{{/*
Expand the name of the chart.
*/}}
{{- define "wq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name, cut to 63 characters (the DNS label limit).
If the release name contains the chart name it is used as the full name.
*/}}
{{- define "wq.fullname" -}}
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

{{/*
Chart name and version as used by the chart label.
*/}}
{{- define "wq.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels. Each template adds its own app.kubernetes.io/component.
*/}}
{{- define "wq.labels" -}}
helm.sh/chart: {{ include "wq.chart" . }}
{{ include "wq.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/part-of: wq
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels. Selectors add app.kubernetes.io/component so that no two components match.
*/}}
{{- define "wq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Run id: the Redis key namespace of this run (`wq:{<runId>}:`), passed to every pod as WQ_RUN.
Default `<fullname>-<revision>`, cut so that the Job names derived from it fit in 63 characters.
*/}}
{{- define "wq.runId" -}}
{{- if .Values.runId }}
{{- .Values.runId }}
{{- else }}
{{- $revision := toString .Release.Revision }}
{{- $prefix := include "wq.fullname" . | trunc (int (sub 55 (len $revision))) | trimSuffix "-" }}
{{- printf "%s-%s" $prefix $revision }}
{{- end }}
{{- end }}

{{/*
The run id as a DNS label: the prefix of the run's Job, ConfigMap and test pod names.
*/}}
{{- define "wq.runName" -}}
{{- include "wq.runId" . | lower | replace "_" "-" | replace "." "-" }}
{{- end }}

{{- define "wq.seedJobName" -}}
{{- printf "%s-seed" (include "wq.runName" .) }}
{{- end }}

{{- define "wq.workerJobName" -}}
{{- printf "%s-worker" (include "wq.runName" .) }}
{{- end }}

{{- define "wq.itemsConfigMapName" -}}
{{- printf "%s-items" (include "wq.runName" .) }}
{{- end }}

{{/*
Name of the bundled Redis' Deployment, Service, PVC and NetworkPolicy.
*/}}
{{- define "wq.redis.fullname" -}}
{{- printf "%s-redis" (include "wq.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{/*
Name of the metrics exporter's Deployment, Service, NetworkPolicy, ServiceMonitor and
PrometheusRule. A ServiceMonitor names the scrape job after the Service, so this is also the
`job` label of the exporter's series in Prometheus.
*/}}
{{- define "wq.exporter.fullname" -}}
{{- printf "%s-exporter" (include "wq.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/*
ConfigMap of the Grafana dashboard.
*/}}
{{- define "wq.dashboard.name" -}}
{{- printf "%s-dashboard" (include "wq.fullname" . | trunc 53 | trimSuffix "-") }}
{{- end }}

{{/*
PromQL label matchers for this release's exporter, as a ServiceMonitor labels its targets:
`job` is the Service's name, `namespace` its namespace. No two releases share both, so the
alerts of one never fire on the runs of another (two releases may share an external Redis:
each exporter then reports the same runs, under its own job).
*/}}
{{- define "wq.metrics.matchers" -}}
{{- printf "job=%q, namespace=%q" (include "wq.exporter.fullname" .) .Release.Namespace }}
{{- end }}

{{/*
Seconds in a Prometheus duration such as 1h30m (values.schema.json checks its shape).
*/}}
{{- define "wq.durationSeconds" -}}
{{- $units := dict "y" 31536000 "w" 604800 "d" 86400 "h" 3600 "m" 60 "s" 1 "ms" 0.001 }}
{{- $seconds := 0.0 }}
{{- range regexFindAll "[0-9]+(ms|y|w|d|h|m|s)" . -1 }}
{{- $unit := get $units (regexReplaceAll "^[0-9]+" . "") }}
{{- $seconds = addf $seconds (mulf (float64 (regexReplaceAll "[a-z]+$" . "")) $unit) }}
{{- end }}
{{- $seconds }}
{{- end }}

{{/*
ServiceAccount of the wq pods.
*/}}
{{- define "wq.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "wq.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference from a {repository, tag, digest} dict and a default tag: the digest wins.
Usage: include "wq.imageRef" (dict "image" .Values.image "defaultTag" .Chart.AppVersion)
*/}}
{{- define "wq.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .defaultTag .image.tag | toString) }}
{{- end }}
{{- end }}

{{- define "wq.image" -}}
{{- include "wq.imageRef" (dict "image" .Values.image "defaultTag" .Chart.AppVersion) }}
{{- end }}

{{- define "wq.redis.image" -}}
{{- include "wq.imageRef" (dict "image" .Values.redis.image "defaultTag" "") }}
{{- end }}

{{/*
Where the items come from: "itemRange", "itemsFile", "itemsUrl", "itemsList" or "items" (also
for an empty run). Only "items" and "itemsFile" travel in a ConfigMap.
*/}}
{{- define "wq.itemsSource" -}}
{{- if not (kindIs "invalid" .Values.itemRange) }}itemRange
{{- else if .Values.itemsFile }}itemsFile
{{- else if .Values.itemsUrl }}itemsUrl
{{- else if .Values.itemsList }}itemsList
{{- else }}items
{{- end }}
{{- end }}

{{/*
Whether the items travel in the items ConfigMap ("true" or empty).
*/}}
{{- define "wq.itemsInConfigMap" -}}
{{- if has (include "wq.itemsSource" .) (list "items" "itemsFile") }}true{{ end }}
{{- end }}

{{/*
Name of the seeder's own ServiceAccount and NetworkPolicy (one for every run of the release).
*/}}
{{- define "wq.seed.fullname" -}}
{{- printf "%s-seed" (include "wq.fullname" . | trunc 58 | trimSuffix "-") }}
{{- end }}

{{/*
ServiceAccount of the seeder pod: its own (seed.serviceAccount), else the wq pods' one.
*/}}
{{- define "wq.seedServiceAccountName" -}}
{{- $sa := .Values.seed.serviceAccount }}
{{- if $sa.create }}
{{- default (include "wq.seed.fullname" .) $sa.name }}
{{- else }}
{{- default (include "wq.serviceAccountName" .) $sa.name }}
{{- end }}
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
Secret holding the Redis password, or nothing when Redis needs none.
*/}}
{{- define "wq.redis.passwordSecretName" -}}
{{- if .Values.redis.enabled }}
{{- if .Values.auth.enabled }}
{{- default (include "wq.redis.fullname" .) .Values.auth.existingSecret }}
{{- end }}
{{- else }}
{{- .Values.externalRedis.existingSecret }}
{{- end }}
{{- end }}

{{- define "wq.redis.passwordSecretKey" -}}
{{- if .Values.redis.enabled }}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecretPasswordKey }}
{{- else -}}
redis-password
{{- end }}
{{- else }}
{{- .Values.externalRedis.existingSecretPasswordKey }}
{{- end }}
{{- end }}

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

{{/*
Redis URL without password; the password travels separately as WQ_REDIS_PASSWORD.
*/}}
{{- define "wq.redisUrl" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s:%d/0" (include "wq.redis.fullname" .) (int .Values.redis.port) }}
{{- else if .Values.externalRedis.url }}
{{- .Values.externalRedis.url }}
{{- else }}
{{- $scheme := ternary "rediss" "redis" .Values.externalRedis.tls }}
{{- printf "%s://%s:%d/%d" $scheme .Values.externalRedis.host (int .Values.externalRedis.port) (int .Values.externalRedis.db) }}
{{- end }}
{{- end }}

{{/*
Environment shared by every container that runs `wq` on one run: where Redis is and which run.
*/}}
{{- define "wq.connectionEnv" -}}
{{ include "wq.redisEnv" . }}
- name: WQ_RUN
  value: {{ include "wq.runId" . | quote }}
{{- end }}

{{/*
Where Redis is and how to reach it, without a run: the exporter reads every run on the Redis.
*/}}
{{- define "wq.redisEnv" -}}
- name: WQ_REDIS_URL
  value: {{ include "wq.redisUrl" . | quote }}
{{- with include "wq.redis.passwordSecretName" . }}
- name: WQ_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ include "wq.redis.passwordSecretKey" $ }}
{{- end }}
{{- if include "wq.redis.caSecretName" . }}
- name: WQ_REDIS_CA_CERT
  value: {{ printf "%s/ca.crt" (include "wq.redis.caMountPath" .) | quote }}
{{- end }}
{{- if and (not .Values.redis.enabled) .Values.externalRedis.cluster }}
- name: WQ_REDIS_CLUSTER
  value: "true"
{{- end }}
{{- end }}

{{/*
The external Redis' CA certificate, for every pod that runs `wq`: the Secret's name (empty:
none), its volume and its read-only mount (each a YAML list, empty without the Secret).
*/}}
{{- define "wq.redis.caSecretName" -}}
{{- if not .Values.redis.enabled }}
{{- .Values.externalRedis.tlsCaSecret }}
{{- end }}
{{- end }}

{{- define "wq.redis.caMountPath" -}}
/etc/wq/redis-ca
{{- end }}

{{- define "wq.redis.caVolumes" -}}
{{- with include "wq.redis.caSecretName" . -}}
- name: redis-ca
  secret:
    secretName: {{ . | quote }}
    items:
      - key: {{ $.Values.externalRedis.tlsCaSecretKey | quote }}
        path: ca.crt
{{- end }}
{{- end }}

{{- define "wq.redis.caVolumeMounts" -}}
{{- if include "wq.redis.caSecretName" . -}}
- name: redis-ca
  mountPath: {{ include "wq.redis.caMountPath" . }}
  readOnly: true
{{- end }}
{{- end }}

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

{{/*
Cross-field checks that values.schema.json cannot express. Collects every message and fails
once, so that a user sees all problems of a values file at a time.
*/}}
{{- define "wq.validateValues" -}}
{{- $messages := list }}
{{- $messages = append $messages (include "wq.validateValues.itemsSources" .) }}
{{- $messages = append $messages (include "wq.validateValues.itemRange" .) }}
{{- $messages = append $messages (include "wq.validateValues.itemsSize" .) }}
{{- $messages = append $messages (include "wq.validateValues.itemsUrl" .) }}
{{- $messages = append $messages (include "wq.validateValues.seedCredentials" .) }}
{{- $messages = append $messages (include "wq.validateValues.seed" .) }}
{{- $messages = append $messages (include "wq.validateValues.externalRedis" .) }}
{{- $messages = append $messages (include "wq.validateValues.externalRedisCa" .) }}
{{- $messages = append $messages (include "wq.validateValues.handler" .) }}
{{- $messages = append $messages (include "wq.validateValues.metrics" .) }}
{{- $messages = append $messages (include "wq.validateValues.autoscale" .) }}
{{- $messages = without $messages "" }}
{{- if $messages }}
{{- printf "\nVALUES VALIDATION:\n%s" (join "\n" $messages) | fail }}
{{- end }}
{{- end }}

{{/* At most one source of items. */}}
{{- define "wq.validateValues.itemsSources" -}}
{{- $set := list }}
{{- if .Values.items }}{{ $set = append $set "items" }}{{ end }}
{{- if .Values.itemsFile }}{{ $set = append $set "itemsFile" }}{{ end }}
{{- if .Values.itemsUrl }}{{ $set = append $set "itemsUrl" }}{{ end }}
{{- if .Values.itemsList }}{{ $set = append $set "itemsList" }}{{ end }}
{{- if not (kindIs "invalid" .Values.itemRange) }}{{ $set = append $set "itemRange" }}{{ end }}
{{- if gt (len $set) 1 -}}
wq: items, itemsFile, itemsUrl, itemsList and itemRange are mutually exclusive: set only one (now set: {{ join ", " $set }}).
{{- end }}
{{- end }}

{{/*
itemsFormat goes with itemsUrl; a URL carries no credentials (they would be readable in the
pod spec): user:password@ is refused. (A signed URL's signature is the one exception people
choose knowingly; it is not detected.)
*/}}
{{- define "wq.validateValues.itemsUrl" -}}
{{- $messages := list }}
{{- if and .Values.itemsFormat (not .Values.itemsUrl) }}
{{- $messages = append $messages (printf "wq: itemsFormat (%s) is the format of itemsUrl: set itemsUrl, or leave itemsFormat empty." .Values.itemsFormat) }}
{{- end }}
{{- range $name := list "itemsUrl" "itemsList" }}
{{- if regexMatch "^[a-z0-9]+://[^/@]*@" (get $.Values $name) }}
{{- $messages = append $messages (printf "wq: %s must not contain credentials (user:password@): give them to the seeder through seed.extraEnvFrom (a Secret) or seed.serviceAccount (workload identity)." $name) }}
{{- end }}
{{- end }}
{{- join "\n" $messages }}
{{- end }}

{{/*
Credentials reach the seeder from a Secret or an identity, never as plain values: an extraEnv
entry named like a credential must use valueFrom.
*/}}
{{- define "wq.validateValues.seedCredentials" -}}
{{- $secret := list "AWS_SECRET_ACCESS_KEY" "AWS_SESSION_TOKEN" "AWS_ACCESS_KEY_ID" "GOOGLE_APPLICATION_CREDENTIALS_JSON" }}
{{- $plain := list }}
{{- range .Values.seed.extraEnv }}
{{- if and (has .name $secret) (hasKey . "value") }}{{ $plain = append $plain .name }}{{ end }}
{{- end }}
{{- if $plain -}}
wq: seed.extraEnv sets {{ join ", " $plain }} as a plain value, readable by anyone who can read the Job: use valueFrom.secretKeyRef, or seed.extraEnvFrom with a Secret.
{{- end }}
{{- end }}

{{/*
A range with no items is a mistake, not an empty run (`wq seed --range` refuses it too).
Numbers from a values file (or --set-json) reach templates as float64, exact only up to 2^53;
--set gives int64. The schema bounds start, end and step to +-(2^63 - 1).
*/}}
{{- define "wq.validateValues.itemRange" -}}
{{- with .Values.itemRange }}
{{- $range := . }}
{{- $messages := list }}
{{- range $name := list "start" "end" "step" }}
{{- $v := get $range $name }}
{{- if and (kindIs "float64" $v) (or (ge $v 9007199254740992.0) (le $v -9007199254740992.0)) }}
{{- $messages = append $messages (printf "wq: itemRange.%s (%.0f) is beyond 2^53, where a number from a values file is not exact (Helm reads it as floating point): pass it with --set itemRange.%s=..., which Helm reads as an exact integer." $name $v $name) }}
{{- end }}
{{- end }}
{{- if lt (int64 .end) (int64 .start) }}
{{- $messages = append $messages (printf "wq: itemRange.end (%d) is below itemRange.start (%d); end is exclusive, as in Python's range()." (int64 .end) (int64 .start)) }}
{{- else if eq (int64 .end) (int64 .start) }}
{{- $messages = append $messages (printf "wq: itemRange.end equals itemRange.start (%d): the range holds no items; end is exclusive, as in Python's range()." (int64 .start)) }}
{{- end }}
{{- join "\n" $messages }}
{{- end }}
{{- end }}

{{/* Items must fit in a ConfigMap (1 MiB with its metadata). */}}
{{- define "wq.validateValues.itemsSize" -}}
{{- $limit := 1000000 }}
{{- $size := 0 }}
{{- $source := include "wq.itemsSource" . }}
{{- if eq $source "items" }}{{ $size = len (toJson (default (list) .Values.items)) }}{{ end }}
{{- if eq $source "itemsFile" }}{{ $size = len .Values.itemsFile }}{{ end }}
{{- if gt $size $limit -}}
wq: {{ $source }} is {{ $size }} bytes, over the {{ $limit }} bytes a ConfigMap can carry. Put the items where the seeder can stream them from and set itemsUrl (s3://, gs://, http(s)://), use itemRange for integer items, or seed the run from outside (seed.enabled=false, then `wq seed --run <runId> --items-url ...`).
{{- end }}
{{- end }}

{{- define "wq.validateValues.seed" -}}
{{- if and (not .Values.seed.enabled) (or .Values.items .Values.itemsFile .Values.itemsUrl .Values.itemsList (not (kindIs "invalid" .Values.itemRange))) -}}
wq: seed.enabled=false means the run is seeded from outside: leave items, itemsFile, itemsUrl, itemsList and itemRange empty.
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

{{- define "wq.validateValues.handler" -}}
{{- $w := .Values.worker }}
{{- if and (eq $w.handler "command") (not $w.command) -}}
wq: worker.handler=command needs worker.command (one list entry per argument, e.g. ["convert", "{{ "{{ item }}" }}", "/out"]).
{{- else if and (eq $w.handler "python") (not $w.python) -}}
wq: worker.handler=python needs worker.python (module:function).
{{- else if and $w.command (ne $w.handler "command") -}}
wq: worker.command is only used with worker.handler=command (now: {{ $w.handler }}).
{{- else if and $w.python (ne $w.handler "python") -}}
wq: worker.python is only used with worker.handler=python (now: {{ $w.handler }}).
{{- else if and $w.captureStdout (ne $w.handler "command") -}}
wq: worker.captureStdout is only used with worker.handler=command (now: {{ $w.handler }}).
{{- end }}
{{- end }}

{{/*
The ServiceMonitor and the alerts watch this release's exporter: without it they would watch
nothing, and the alerts would never fire. (The dashboard shows every exporter: it needs none.)
Prometheus refuses a scrape timeout above the interval, and increase() an empty range; the
sidecar's label must not replace one of the chart's own.
*/}}
{{- define "wq.validateValues.metrics" -}}
{{- $m := .Values.metrics }}
{{- $messages := list }}
{{- if not $m.enabled }}
{{- range $name := list "serviceMonitor" "prometheusRule" }}
{{- if (get $m $name).enabled }}
{{- $messages = append $messages (printf "wq: metrics.%s.enabled needs metrics.enabled=true: it is for this release's exporter." $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- with $m.serviceMonitor }}
{{- if and .interval .scrapeTimeout }}
{{- if gt (float64 (include "wq.durationSeconds" .scrapeTimeout)) (float64 (include "wq.durationSeconds" .interval)) }}
{{- $messages = append $messages (printf "wq: metrics.serviceMonitor.scrapeTimeout (%s) is longer than metrics.serviceMonitor.interval (%s): Prometheus refuses that." .scrapeTimeout .interval) }}
{{- end }}
{{- end }}
{{- end }}
{{- $chartLabels := list "app.kubernetes.io/component" }}
{{- range $key, $_ := include "wq.labels" . | fromYaml }}{{ $chartLabels = append $chartLabels $key }}{{ end }}
{{- if has $m.dashboard.labelKey $chartLabels }}
{{- $messages = append $messages (printf "wq: metrics.dashboard.labelKey %s is a label the chart sets itself: the Grafana sidecar's label must be another one." $m.dashboard.labelKey) }}
{{- end }}
{{- if eq (float64 (include "wq.durationSeconds" $m.prometheusRule.stalledWindow)) 0.0 }}
{{- $messages = append $messages (printf "wq: metrics.prometheusRule.stalledWindow (%s) must be above zero: it is the range of increase()." $m.prometheusRule.stalledWindow) }}
{{- end }}
{{- join "\n" $messages }}
{{- end }}
