#!/usr/bin/env bash
# Starts the local OCI registry that `make push` pushes to and the kind cluster pulls from,
# set up the way kind's "Local Registry" guide does it: a registry container published on
# 127.0.0.1:${REGISTRY_PORT} for the host (docker push, helm push) and, once a cluster runs,
# joined to the `kind` network so that the nodes' containerd reaches it by name
# (connect_registry in kind-up.sh writes the nodes' hosts.toml).
# No registry image can be pulled here, so the registry is go-containerregistry's
# `crane registry serve` (CRANE: a static binary from the Go module proxy, `make tools`)
# in an image of that binary alone. Blobs are kept on disk in the container; manifests
# live in the registry's memory, so a restarted registry is empty and `make push` fills it
# again (pushes of layers it still has are skipped).
# Prints the registry's host-side address (localhost:PORT) on stdout.
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "$0")/lib.sh"

CRANE="${CRANE:-crane}"
REGISTRY_NAME="${REGISTRY_NAME:-wq-registry}"
REGISTRY_PORT="${REGISTRY_PORT:-5001}"
work=""

cleanup() { [ -z "${work}" ] || rm -rf "${work}"; }

registry_running() {
  [ "$(docker inspect -f '{{.State.Running}}' "${REGISTRY_NAME}" 2>/dev/null)" = true ]
}

# The registry image: the crane binary, a passwd file and a data directory owned by nobody.
build_registry_image() { # tag
  docker image inspect "$1" >/dev/null 2>&1 && return 0
  work="$(mktemp -d "${TMPDIR:-/tmp}/wq-registry.XXXXXX")"
  mkdir -p "${work}/rootfs/var/lib/registry" "${work}/rootfs/etc" "${work}/rootfs/tmp"
  chmod 1777 "${work}/rootfs/tmp"
  chown 65534:65534 "${work}/rootfs/var/lib/registry"
  install -m 0755 "$(command -v "${CRANE}")" "${work}/rootfs/crane"
  printf 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"${work}/rootfs/etc/passwd"
  printf 'nogroup:x:65534:\n' >"${work}/rootfs/etc/group"
  import_rootfs "${work}/rootfs" "$1" 'USER 65534:65534' \
    'ENTRYPOINT ["/crane", "registry", "serve", "--address", ":5000", "--disk", "/var/lib/registry"]'
}

wait_ready() {
  local i
  for i in $(seq 1 30); do
    "${CRANE}" catalog --insecure "localhost:${REGISTRY_PORT}" >/dev/null 2>&1 && return 0
    sleep 1
  done
  docker logs "${REGISTRY_NAME}" >&2 || true
  die "registry ${REGISTRY_NAME} does not answer on 127.0.0.1:${REGISTRY_PORT} after ${i}s"
}

main() {
  trap cleanup EXIT
  command -v "${CRANE}" >/dev/null 2>&1 || die "no ${CRANE}: run make tools"
  local version image
  version="$("${CRANE}" version)"
  image="wq.local/registry:crane-${version}"
  if registry_running && [ "$(docker inspect -f '{{.Config.Image}}' "${REGISTRY_NAME}")" = "${image}" ]; then
    wait_ready
    echo "localhost:${REGISTRY_PORT}"
    return 0
  fi
  build_registry_image "${image}"
  docker rm -f -v "${REGISTRY_NAME}" >/dev/null 2>&1 || true
  log "starting registry ${REGISTRY_NAME} (${image}) on 127.0.0.1:${REGISTRY_PORT}"
  docker run -d --restart=always --name "${REGISTRY_NAME}" --network bridge \
    -p "127.0.0.1:${REGISTRY_PORT}:5000" --read-only --tmpfs /tmp \
    --mount type=volume,dst=/var/lib/registry "${image}" >/dev/null
  wait_ready
  remove_stale_tags wq.local/registry "${image}"
  echo "localhost:${REGISTRY_PORT}"
}

main "$@"
