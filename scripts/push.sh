#!/usr/bin/env bash
# Pushes images and a packaged chart to an OCI registry, as `make push` does:
#   REGISTRY=host[:port][/path] PUSH_TAG=tag scripts/push.sh [--chart ARCHIVE] [IMAGE=NAME...]
# Each local IMAGE is tagged and pushed as REGISTRY/NAME:PUSH_TAG; the chart archive
# (`make package`) goes to oci://REGISTRY/charts, where helm names it by its Chart.yaml
# version. A registry on localhost is spoken to in plain HTTP (the local registry of the
# kind cluster); any other must be TLS, with credentials from `docker login` and
# `helm registry login`.
# Prints each pushed image reference on stdout.
set -euo pipefail

: "${REGISTRY:?set REGISTRY to the registry (and path) to push to, e.g. ghcr.io/you}"
: "${PUSH_TAG:?set PUSH_TAG to the image tag to push}"
HELM="${HELM:-helm}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

push_image() { # local image, name in the registry
  local ref="${REGISTRY}/$2:${PUSH_TAG}"
  docker image inspect "$1" >/dev/null 2>&1 || die "image $1 is not built (make images)"
  docker tag "$1" "${ref}"
  log "docker push ${ref}"
  docker push -q "${ref}" >/dev/null
  echo "${ref}"
}

push_chart() { # archive
  local plain=()
  [ -f "$1" ] || die "no chart archive $1 (make package)"
  case "${REGISTRY}" in localhost:* | 127.0.0.1:*) plain=(--plain-http) ;; esac
  log "helm push $1 oci://${REGISTRY}/charts"
  "${HELM}" push "$1" "oci://${REGISTRY}/charts" "${plain[@]}" >&2
}

main() {
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --chart)
        [ "$#" -ge 2 ] || die "--chart needs the chart archive"
        push_chart "$2"
        shift 2
        ;;
      *=*)
        push_image "${1%%=*}" "${1#*=}"
        shift
        ;;
      *) die "unknown argument $1 (want --chart ARCHIVE or IMAGE=NAME)" ;;
    esac
  done
}

main "$@"
