{{/*
Helpers of the metrics exporter (metrics.*) and of what watches it: ServiceMonitor,
PrometheusRule and the Grafana dashboard, kept beside their templates.
*/}}

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
The ServiceMonitor and the alerts watch this release's exporter: without it they would watch
nothing, and the alerts would never fire. (The dashboard shows every exporter: it needs none.)
Prometheus refuses a scrape timeout above the interval, and increase() an empty range; the
sidecar's label must not replace one of the chart's own.
*/}}
{{- define "wq.validateValues.metrics" -}}
{{- $m := .Values.metrics }}
{{- $messages := list }}
{{- if not $m.enabled }}
{{- range $name := list "serviceMonitor" "prometheusRule" "ui" }}
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
