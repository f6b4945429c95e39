{{/*
Helpers of the seeder (seed.*) and of the run's items, kept beside its templates: the Job, its
ServiceAccount and NetworkPolicy, the ConfigMap that carries items, and the checks of the items
values. NOTES.txt also reads wq.itemsSource.
*/}}

{{- define "wq.seedJobName" -}}
{{- printf "%s-seed" (include "wq.runName" .) }}
{{- end }}

{{- define "wq.itemsConfigMapName" -}}
{{- printf "%s-items" (include "wq.runName" .) }}
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
