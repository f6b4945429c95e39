#!/usr/bin/env bash
# The main job end to end, as `make demo` does: cluster up (reused when it runs), images
# built and pushed to the cluster's local registry, `helm install` of the Kubernetes docs'
# nine fruit items, live progress until the worker Job finishes, `helm test`, then the run's
# final `wq status`, all with the commands NOTES.txt prints; then it prints NOTES.txt's
# `kubectl wq` lines, each ready to run on the kept release (tests/e2e/test_demo.py runs them).
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
# The same items one per line, for `kubectl wq digest --items-file`.
items_file="${PWD}/.cache/demo/items.txt"
job=""  # the release's worker Job, set by main

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
plugin_commands() { # NOTES.txt's `kubectl wq` lines, FILE being the demo's own items file
  helm get notes "${release}" --namespace "${namespace}" |
    sed -n 's/^  \(kubectl wq .*\)$/\1/p' | sed "s|FILE|${items_file}|g"
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

  mkdir -p "$(dirname "${items_file}")"
  tr -d '{}' <<<"${items}" | tr ',' '\n' >"${items_file}"
  job="$(of_release jobs worker)"
  # What NOTES.txt tells a user to do: watch (the plugin waits for Redis), then `helm test`.
  log "live progress of run ${job%-worker} (kubectl wq watch, from this machine)"
  kubectl wq watch "${release}" -n "${namespace}" --interval 1 >/dev/null
  until finished; do sleep 1; done
  log "job ${job}: $(outcome)"
  grep -qw Complete <<<"$(outcome)"
  log "helm test: every item done, none dead"
  helm test "${release}" --namespace "${namespace}" | grep -E '^(TEST SUITE|Phase)'
  log "final status, from this machine: kubectl wq status ${release} -n ${namespace}"
  kubectl wq status "${release}" -n "${namespace}"
  log "kept: helm -n ${namespace} uninstall ${release}; make kind-down"
  log "the run from your machine (NOTES.txt's kubectl wq lines; kubectl-wq is in .venv/bin):"
  plugin_commands
}

main "$@"
