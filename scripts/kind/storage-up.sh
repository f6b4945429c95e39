#!/usr/bin/env bash
# Gives the test cluster a dynamic provisioner as its default StorageClass, as the clusters users
# run have: kind's official node images ship rancher's local-path-provisioner (class `standard`),
# the node image built here does not, and kind then falls back to a class `standard` of the
# in-tree kubernetes.io/host-path provisioner, which nothing serves on kind and which ignores
# fsGroup. So on a cluster whose default class is not local-path already, this runs
# local-path-provisioner (storage/local-path.yaml), makes its class `local-path` the default and
# takes the default mark off the others. Idempotent; nothing on the official images.
#
# Its image, for the provisioner and its helper pods alike (they need sh, mkdir, chmod and rm): a
# Debian minbase rootfs (debootstrap, as for kube-router) and the binary, built from the Go module
# proxy (v0.0.30 is the newest version it serves) and cached per version: a warm run pushes and
# applies only. Settings: LOCAL_PATH_VERSION, REGISTRY_PORT, KUBECONFIG (from the Makefile).
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "$0")/lib.sh"

VERSION="${LOCAL_PATH_VERSION:-v0.0.30}"
REGISTRY_PORT="${REGISTRY_PORT:-5001}"
MODULE=github.com/rancher/local-path-provisioner
PROVISIONER=rancher.io/local-path
CLASS=local-path
DEFAULT_ANNOTATION=storageclass.kubernetes.io/is-default-class
work=""

cleanup() { [ -z "${work}" ] || rm -rf "${work}"; }

build_image() { # tag
  local binary
  binary="$(go_binary local-path-provisioner "${MODULE}" "${VERSION}")"
  work="$(mktemp -d "${TMPDIR:-/tmp}/wq-storage.XXXXXX")"
  # What the helper pods run (sh; mkdir, chmod, rm): in minbase already, named for the reader
  # (and debootstrap_rootfs takes at least one package).
  debootstrap_rootfs "${work}/rootfs" dash coreutils
  install -m 0755 "${binary}" "${work}/rootfs/usr/local/bin/local-path-provisioner"
  import_rootfs "${work}/rootfs" "$1" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'ENTRYPOINT ["/usr/local/bin/local-path-provisioner"]'
}

# Every StorageClass as "NAME PROVISIONER DEFAULT" lines (DEFAULT: the annotation, or empty).
classes() {
  kubectl get storageclass -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.provisioner}{" "}{.metadata.annotations.storageclass\.kubernetes\.io/is-default-class}{"\n"}{end}'
}

# Takes the default mark off every class but ours, so that a claim without a class gets ours.
undefault_others() {
  local name provisioner default
  while read -r name provisioner default; do
    if [ "${name}" = "${CLASS}" ] || [ "${default}" != true ]; then continue; fi
    kubectl annotate --overwrite storageclass "${name}" "${DEFAULT_ANNOTATION}=false" >/dev/null
    log "storage class ${name} (${provisioner}) is no longer the default"
  done < <(classes)
}

main() {
  trap cleanup EXIT
  : "${KUBECONFIG:?set KUBECONFIG to the cluster kubeconfig file}"
  if [ "$(classes | awk '$3 == "true" {print $2}')" = "${PROVISIONER}" ]; then
    log "the default storage class is served by ${PROVISIONER} already"
    return 0
  fi
  local image
  image="wq.local/local-path-provisioner:${VERSION}-$(files_hash storage-up.sh)"
  push_and_apply "${image}" "${KIND_SCRIPTS}/storage/local-path.yaml"
  undefault_others
  kubectl -n local-path-storage rollout status deployment/local-path-provisioner --timeout=180s >&2
  remove_stale_tags wq.local/local-path-provisioner "${image}"
  log "local-path-provisioner ${VERSION} serves the default storage class ${CLASS}"
}

main "$@"
