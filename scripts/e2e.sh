#!/usr/bin/env bash
# Runs the e2e suite (tests/e2e) on the kind test cluster, as `make e2e` does:
#   1. cluster up (reused when it runs), images built and pushed with the chart to the
#      cluster's local registry (scripts/cluster-images.sh), which the tests install from;
#   2. pytest -m e2e tests/e2e, with extra arguments (`make e2e E2E_ARGS="-k docs"`), in
#      E2E_WORKERS pytest-xdist workers side by side (default 4: the tests mostly wait on pods,
#      each in its own namespace); E2E_MARK selects other tests of tests/e2e instead (`make
#      scale`'s kind run: E2E_MARK=scale, `make bench-autoscale`: bench), which measure and so
#      run one at a time (E2E_WORKERS default 0: no xdist);
#   3. on failure, `kind export logs` and every pod into _artifacts/e2e-logs;
#   4. cluster down, unless KEEP_CLUSTER=1 (kept for debugging: see `make kind-down`) or the
#      cluster was there before (e.g. `make demo`'s, with its release: left as it was found).
# Settings come from the Makefile: MAKE, PYTHON, KIND, KIND_CLUSTER, KUBECONFIG (the cluster's
# own file, never the user's) and what scripts/cluster-images.sh reads.
set -o errexit -o nounset -o pipefail

cd "$(dirname "$0")/.."
: "${MAKE:=make}" "${PYTHON:=.venv/bin/python}" "${KIND:=bin/kind}" "${KIND_CLUSTER:=wq-e2e}"
: "${KUBECONFIG:?set KUBECONFIG to the kubeconfig file of the kind cluster (make e2e does)}"
export KUBECONFIG KIND_CLUSTER
ARTIFACTS="${ARTIFACTS:-${PWD}/_artifacts}"
found_cluster=0  # set by main: the cluster ran before this suite, so it is not ours to delete

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup() {
  local code=$?
  if [ "${code}" -ne 0 ] && [ -f "${KUBECONFIG}" ]; then
    log "e2e failed (exit ${code}): cluster logs in ${ARTIFACTS}/e2e-logs"
    mkdir -p "${ARTIFACTS}/e2e-logs"
    "${KIND}" export logs "${ARTIFACTS}/e2e-logs" --name "${KIND_CLUSTER}" >/dev/null 2>&1 || true
    kubectl get pods --all-namespaces -o wide >"${ARTIFACTS}/e2e-logs/pods.txt" 2>&1 || true
  fi
  if [ "${found_cluster}" = 1 ]; then
    log "cluster ${KIND_CLUSTER} was running before: kept (make kind-down removes it)"
  else
    "${MAKE}" --no-print-directory kind-down || log "kind-down failed"
  fi
  exit "${code}"
}

main() {
  trap cleanup EXIT
  local started=${SECONDS}
  if "${KIND}" get clusters 2>/dev/null | grep -qx "${KIND_CLUSTER}"; then
    found_cluster=1
  fi
  "${MAKE}" --no-print-directory images kind-up package
  # From here on WORKER_IMAGE etc. name what the cluster pulls from its registry.
  local refs
  refs="$(scripts/cluster-images.sh)"
  # shellcheck disable=SC2046  # one NAME=VALUE per line, no spaces in them
  export $(printf '%s\n' "${refs}")
  log "cluster and images ready after $((SECONDS - started))s"
  local mark="${E2E_MARK:-e2e}" workers
  if [ "${mark}" = e2e ]; then workers="${E2E_WORKERS:-4}"; else workers="${E2E_WORKERS:-0}"; fi
  # worksteal: a worker that runs out takes queued tests from another, so that the suite does
  # not wait at the end for tests queued behind a long one.
  "${PYTHON}" -m pytest -m "${mark}" -n "${workers}" --dist worksteal tests/e2e "$@"
  log "e2e passed in $((SECONDS - started))s (timings: ${ARTIFACTS}/e2e-timings.txt)"
}

main "$@"
