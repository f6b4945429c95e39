#!/usr/bin/env bash
# Pushes what this tree built to the kind cluster's local registry, as `make e2e` and
# `make demo` do before installing: the worker, Redis and python base images under one tag
# made from their content (so that pull policy IfNotPresent can never run a stale image
# that kept its tag) and the chart archive (`make package`).
# Prints the references the cluster pulls, one NAME=VALUE per line, for the caller to export:
#   WORKER_IMAGE, REDIS_IMAGE, PYTHON_BASE_IMAGE (localhost:PORT/...:TAG),
#   CHART_REF (oci://localhost:PORT/charts/wq) and CHART_VERSION.
# Settings come from the Makefile: WORKER_IMAGE, REDIS_IMAGE, PYTHON_BASE_IMAGE (the local
# builds), CHART_ARCHIVE, CHART_VERSION, REGISTRY_PORT, HELM.
set -euo pipefail

: "${WORKER_IMAGE:?set by the Makefile}" "${REDIS_IMAGE:?set by the Makefile}"
: "${PYTHON_BASE_IMAGE:?set by the Makefile}" "${CHART_ARCHIVE:?set by the Makefile}"
: "${CHART_VERSION:?set by the Makefile}" "${REGISTRY_PORT:=5001}"

main() {
  local registry="localhost:${REGISTRY_PORT}" tag
  tag="e2e-$(docker image inspect -f '{{.Id}}' "${WORKER_IMAGE}" "${REDIS_IMAGE}" "${PYTHON_BASE_IMAGE}" |
    sha256sum | cut -c1-12)"
  REGISTRY="${registry}" PUSH_TAG="${tag}" "$(dirname "$0")/push.sh" \
    "${WORKER_IMAGE}=wq-worker" "${REDIS_IMAGE}=wq-redis" "${PYTHON_BASE_IMAGE}=wq-python" \
    --chart "${CHART_ARCHIVE}" >/dev/null
  printf '%s\n' \
    "WORKER_IMAGE=${registry}/wq-worker:${tag}" \
    "REDIS_IMAGE=${registry}/wq-redis:${tag}" \
    "PYTHON_BASE_IMAGE=${registry}/wq-python:${tag}" \
    "CHART_REF=oci://${registry}/charts/wq" \
    "CHART_VERSION=${CHART_VERSION}"
}

main "$@"
