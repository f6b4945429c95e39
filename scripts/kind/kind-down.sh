#!/usr/bin/env bash
# Deletes the test cluster and its local registry (registry-up.sh), unless KEEP_CLUSTER=1
# (for debugging).
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "$0")/lib.sh"

KIND="${KIND:-kind}"
KIND_CLUSTER="${KIND_CLUSTER:-wq-e2e}"
REGISTRY_NAME="${REGISTRY_NAME:-wq-registry}"

main() {
  : "${KUBECONFIG:?set KUBECONFIG to the cluster kubeconfig file}"
  if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    log "KEEP_CLUSTER=1: keeping cluster ${KIND_CLUSTER} (KUBECONFIG=${KUBECONFIG})"
    return 0
  fi
  "${KIND}" delete cluster --name "${KIND_CLUSTER}" --kubeconfig "${KUBECONFIG}"
  rm -f "${KUBECONFIG}"
  if docker inspect "${REGISTRY_NAME}" >/dev/null 2>&1; then
    docker rm -f -v "${REGISTRY_NAME}" >/dev/null
    log "registry ${REGISTRY_NAME} removed"
  fi
}

main "$@"
