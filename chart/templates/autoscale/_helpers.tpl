{{/*
Helpers of the autoscaler (worker.autoscale), kept beside its templates. `wq autoscale` runs in
a Job of its own, per run like the worker Job, and sizes the worker Job's parallelism.
*/}}

{{/*
The controller's Job: `<runName>-scaler`, at most 63 characters like `<runName>-worker`.
*/}}
{{- define "wq.autoscale.jobName" -}}
{{- printf "%s-scaler" (include "wq.runName" .) }}
{{- end }}

{{/*
The controller's ServiceAccount, Role and RoleBinding: one per release, updated in place by an
upgrade to name the new run's worker Job.
*/}}
{{- define "wq.autoscale.fullname" -}}
{{- printf "%s-autoscaler" (include "wq.fullname" . | trunc 52 | trimSuffix "-") }}
{{- end }}

{{/*
The worker Job's parallelism. Without autoscaling, worker.parallelism. With it, the size the
controller last set when the Job exists already (an upgrade that keeps runId applies the same
Job again: rendering what the controller set keeps Helm's three-way merge from putting
worker.parallelism back), else worker.parallelism within [min, max].
*/}}
{{- define "wq.worker.parallelism" -}}
{{- $worker := .Values.worker }}
{{- if $worker.autoscale.enabled }}
{{- $live := lookup "batch/v1" "Job" .Release.Namespace (include "wq.workerJobName" .) }}
{{- if and $live (dig "spec" "parallelism" 0 $live) }}
{{- int (dig "spec" "parallelism" 0 $live) }}
{{- else }}
{{- max (int $worker.autoscale.min) (min (int $worker.autoscale.max) (int $worker.parallelism)) }}
{{- end }}
{{- else }}
{{- $worker.parallelism }}
{{- end }}
{{- end }}

{{/* Part of wq.validateValues: limits the schema cannot compare. */}}
{{- define "wq.validateValues.autoscale" -}}
{{- $autoscale := .Values.worker.autoscale }}
{{- if and $autoscale.enabled (gt (int $autoscale.min) (int $autoscale.max)) -}}
wq: worker.autoscale.min ({{ $autoscale.min }}) is above worker.autoscale.max ({{ $autoscale.max }}).
{{- end }}
{{- end }}
