{{/*
Helpers that several components use: names and labels, the run id, image references, how a
pod reaches Redis (bundled or external), and wq.validateValues. A component's own helpers live
in <component>/_helpers.tpl, beside the templates that use them.
*/}}

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

{{/*
Name of the bundled Redis' Deployment, Service, PVC and NetworkPolicy.
*/}}
{{- define "wq.redis.fullname" -}}
{{- printf "%s-redis" (include "wq.fullname" . | trunc 57 | trimSuffix "-") }}
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
Cross-field checks that values.schema.json cannot express. Collects every message and fails
once, so that a user sees all problems of a values file at a time. Each check lives beside its
component: wq.validateValues.<check> in <component>/_helpers.tpl.
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
{{- $messages = append $messages (include "wq.validateValues.redisPersistence" .) }}
{{- $messages = append $messages (include "wq.validateValues.handler" .) }}
{{- $messages = append $messages (include "wq.validateValues.metrics" .) }}
{{- $messages = append $messages (include "wq.validateValues.autoscale" .) }}
{{- $messages = without $messages "" }}
{{- if $messages }}
{{- printf "\nVALUES VALIDATION:\n%s" (join "\n" $messages) | fail }}
{{- end }}
{{- end }}
