#!/usr/bin/env bash
# The main job end to end, as `make demo` does: cluster up (reused when it runs), images
# built and loaded, `helm install` of the Kubernetes docs' nine fruit items, live progress
# until the worker Job finishes, then the run's final `wq status` (through `helm test`).
# The cluster and the release are kept: the printed commands work on them afterwards.
# Settings come from the Makefile: MAKE, KUBECONFIG, WORKER_IMAGE, REDIS_IMAGE;
# DEMO_RELEASE and DEMO_NAMESPACE (default wq-demo) may be set.
set -o errexit -o nounset -o pipefail

cd "$(dirname "$0")/.."
: "${MAKE:=make}" "${KUBECONFIG:?set KUBECONFIG to the kubeconfig file of the kind cluster}"
: "${WORKER_IMAGE:?}" "${REDIS_IMAGE:?}"
export KUBECONFIG
release="${DEMO_RELEASE:-wq-demo}"
namespace="${DEMO_NAMESPACE:-wq-demo}"
items='{apple,banana,cherry,date,fig,grape,lemon,melon,orange}'

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
on_exit() {
  local code=$?
  [ "${code}" -eq 0 ] || log "demo failed (exit ${code}); look: kubectl -n ${namespace} get all"
}
trap on_exit EXIT

"${MAKE}" --no-print-directory images
log "helm install ${release} with the docs' nine items, 2 worker pods"
helm upgrade --install "${release}" chart --namespace "${namespace}" --create-namespace \
  --set "items=${items}" --set worker.parallelism=2 \
  --set "image.repository=${WORKER_IMAGE%:*}" --set "image.tag=${WORKER_IMAGE##*:}" \
  --set image.pullPolicy=IfNotPresent \
  --set "redis.image.repository=${REDIS_IMAGE%:*}" --set "redis.image.tag=${REDIS_IMAGE##*:}" \
  --set redis.image.pullPolicy=IfNotPresent

kube() { kubectl --namespace "${namespace}" "$@"; }
of_release() { # component -> the name of this release's object with that component label
  kube get "$1" -l "app.kubernetes.io/instance=${release},app.kubernetes.io/component=$2" \
    --sort-by=.metadata.creationTimestamp -o jsonpath='{.items[-1:].metadata.name}'
}
job="$(of_release jobs worker)"
outcome() { kube get job "${job}" -o jsonpath='{.status.conditions[?(@.status=="True")].type}'; }
finished() { grep -qwE 'Complete|Failed' <<<"$(outcome)"; }

# `wq ARGS` in a one-off pod like NOTES.txt's: the worker Job's settings, and the labels
# that the chart's NetworkPolicy lets reach Redis. No "stdin": kubectl then only streams the
# output, which also works when make runs without a terminal.
wq_pod() {
  local template=.spec.template.spec env container_security pod_security command
  env="$(kube get job "${job}" -o jsonpath="{${template}.containers[0].env}")"
  container_security="$(kube get job "${job}" -o jsonpath="{${template}.containers[0].securityContext}")"
  pod_security="$(kube get job "${job}" -o jsonpath="{${template}.securityContext}")"
  command="$(printf '"%s",' wq "$@")"
  kube run "${release}-cli-$$" --rm -i --quiet --restart=Never --image="${WORKER_IMAGE}" \
    --labels="app.kubernetes.io/name=wq,app.kubernetes.io/instance=${release},app.kubernetes.io/component=cli" \
    --overrides="{\"spec\": {\"automountServiceAccountToken\": false,
      \"securityContext\": ${pod_security}, \"containers\": [{\"name\": \"wq\",
      \"image\": \"${WORKER_IMAGE}\", \"command\": [${command%,}], \"env\": ${env},
      \"securityContext\": ${container_security}}]}}"
}

kube rollout status "deployment/$(of_release deployments redis)" --timeout=180s >&2
log "live progress of run ${job%-worker} (wq status --watch)"
wq_pod status --watch --interval 1 >/dev/null  # the bar is on stderr; the final text follows
until finished; do sleep 1; done
log "job ${job}: $(outcome)"
grep -qw Complete <<<"$(outcome)"
log "final wq status"
wq_pod status
log "kept: helm -n ${namespace} uninstall ${release}; make kind-down"
