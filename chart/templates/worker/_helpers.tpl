{{/*
Helpers of the worker Job, kept beside its templates. Its parallelism is in
autoscale/_helpers.tpl: with worker.autoscale, the autoscaler decides it.
*/}}

{{- define "wq.workerJobName" -}}
{{- printf "%s-worker" (include "wq.runName" .) }}
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
