#!/usr/bin/env bash
# The main job end to end, as `make demo` does: cluster up (reused when it runs), images
# built and pushed to the cluster's local registry, `helm install` of the Kubernetes docs'
# nine fruit items, live progress until the worker Job finishes, `helm test`, then the run's
# final `wq status`, all with the commands NOTES.txt prints.
# The cluster and the release are kept: the printed commands work on them afterwards.
# Settings come from the Makefile: MAKE, KUBECONFIG and what scripts/cluster-images.sh
# reads; DEMO_RELEASE and DEMO_NAMESPACE (default wq-demo) may be set.
set -o errexit -o nounset -o pipefail

cd "$(dirname "$0")/.."
: "${MAKE:=make}" "${KUBECONFIG:?set KUBECONFIG to the kubeconfig file of the kind cluster}"
export KUBECONFIG
release="${DEMO_RELEASE:-wq-demo}"
namespace="${DEMO_NAMESPACE:-wq-demo}"
items='{apple,banana,cherry,date,fig,grape,lemon,melon,orange}'
job=""  # the release's worker Job, set by main
# What kubectl exec says when the watched worker pod ends under it.
EXEC_RACE='command terminated with exit code|unable to upgrade connection|cannot exec into a container'

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
on_exit() {
  local code=$?
  [ "${code}" -eq 0 ] || log "demo failed (exit ${code}); look: kubectl -n ${namespace} get all"
}

kube() { kubectl --namespace "${namespace}" "$@"; }
of_release() { # component -> the name of this release's object with that component label
  kube get "$1" -l "app.kubernetes.io/instance=${release},app.kubernetes.io/component=$2" \
    --sort-by=.metadata.creationTimestamp -o jsonpath='{.items[-1:].metadata.name}'
}
outcome() { kube get job "${job}" -o jsonpath='{.status.conditions[?(@.status=="True")].type}'; }
finished() { grep -qwE 'Complete|Failed' <<<"$(outcome)"; }
notes_cli_command() { # wq subcommand -> NOTES.txt's CLI pod command, running that subcommand
  helm get notes "${release}" --namespace "${namespace}" |
    awk -v start="kubectl -n ${namespace} run " 'index($0, start) {on = 1} on && /^$/ {exit} on' |
    sed "s/\"dead\"/\"$1\"/"
}

main() {
  trap on_exit EXIT
  "${MAKE}" --no-print-directory images kind-up package
  local refs
  refs="$(scripts/cluster-images.sh)"
  # shellcheck disable=SC2046  # one NAME=VALUE per line, no spaces in them
  export $(printf '%s\n' "${refs}")
  log "helm install ${release} with the docs' nine items, 2 worker pods"
  helm upgrade --install "${release}" chart --namespace "${namespace}" --create-namespace \
    --set "items=${items}" --set worker.parallelism=2 \
    --set "image.repository=${WORKER_IMAGE%:*}" --set "image.tag=${WORKER_IMAGE##*:}" \
    --set image.pullPolicy=IfNotPresent \
    --set "redis.image.repository=${REDIS_IMAGE%:*}" --set "redis.image.tag=${REDIS_IMAGE##*:}" \
    --set redis.image.pullPolicy=IfNotPresent

  job="$(of_release jobs worker)"
  # What NOTES.txt tells a user to do: watch from inside a worker pod, then `helm test`.
  kube rollout status "deployment/$(of_release deployments redis)" --timeout=180s >&2
  log "live progress of run ${job%-worker} (wq status --watch in a worker pod)"
  # Again while no worker pod runs yet, or if the one watched from ends first. kubectl's
  # own complaints about that race (the pod ended under the exec) are expected, not errors:
  # only they are filtered out of the live view; the Job's outcome is checked below.
  until finished || kube exec "job/${job}" -c worker -- wq status --watch --interval 1 \
    >/dev/null 2> >(grep -vE "${EXEC_RACE}" >&2); do
    sleep 1
  done
  until finished; do sleep 1; done
  log "job ${job}: $(outcome)"
  grep -qw Complete <<<"$(outcome)"
  log "helm test: every item done, none dead"
  helm test "${release}" --namespace "${namespace}" | grep -E '^(TEST SUITE|Phase)'
  log "final wq status (NOTES.txt's CLI pod)"
  bash -c "$(notes_cli_command status)"
  log "kept: helm -n ${namespace} uninstall ${release}; make kind-down"
}

main "$@"
