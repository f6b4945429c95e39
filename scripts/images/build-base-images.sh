#!/usr/bin/env bash
# Builds, without any container registry, the two images that stand in for
# official ones on machines that cannot pull them (names from the Makefile):
#   PYTHON_BASE_IMAGE  Debian bookworm + python3 (3.11) + pip + venv, the
#                      base of images/worker/Dockerfile (build arg BASE_IMAGE)
#   REDIS_IMAGE        Debian bookworm + redis-server (7.0)
# Each is a debootstrap rootfs brought in with `docker import`. An image is
# rebuilt only when this script changes (label wq.build-hash).
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "$0")/../kind/lib.sh"

: "${PYTHON_BASE_IMAGE:?set by the Makefile (make image-bases)}"
: "${REDIS_IMAGE:?set by the Makefile (make image-bases)}"
build_hash=""  # set by main
work=""        # set by main, removed on exit

up_to_date() {
  [ "$(docker image inspect -f '{{index .Config.Labels "wq.build-hash"}}' "$1" 2>/dev/null)" = "${build_hash}" ]
}

build_python_image() {
  debootstrap_rootfs "${work}/python" python3 python3-pip python3-venv python-is-python3 ca-certificates
  # Like the official python image, let `pip install` into the system
  # interpreter work (a container is its own environment).
  rm -f "${work}"/python/usr/lib/python3*/EXTERNALLY-MANAGED
  import_rootfs "${work}/python" "${PYTHON_BASE_IMAGE}" \
    "LABEL wq.build-hash=${build_hash}" \
    'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'CMD ["python3"]'
  docker run --rm "${PYTHON_BASE_IMAGE}" python3 -c \
    'import sys, venv, pip; assert sys.version_info[:2] == (3, 11), sys.version'
}

build_redis_image() {
  debootstrap_rootfs "${work}/redis" redis-server
  mkdir -p "${work}/redis/data"
  chroot "${work}/redis" chown redis:redis /data
  # protected-mode off as in the official image: the server listens on the
  # pod's address and Kubernetes, not Redis, decides who reaches it.
  import_rootfs "${work}/redis" "${REDIS_IMAGE}" \
    "LABEL wq.build-hash=${build_hash}" \
    'USER redis' \
    'WORKDIR /data' \
    'EXPOSE 6379' \
    'CMD ["redis-server", "--protected-mode", "no"]'
  docker run --rm "${REDIS_IMAGE}" redis-server --version
}

main() {
  build_hash="$( { cat "$0" "${KIND_SCRIPTS}/lib.sh"; echo "${DEBIAN_SUITE}"; } | sha256sum | cut -c1-12)"
  work="$(mktemp -d "${TMPDIR:-/tmp}/wq-images.XXXXXX")"
  trap 'rm -rf "${work}"' EXIT

  if up_to_date "${PYTHON_BASE_IMAGE}"; then
    log "${PYTHON_BASE_IMAGE} is up to date"
  else
    build_python_image
  fi
  if up_to_date "${REDIS_IMAGE}"; then
    log "${REDIS_IMAGE} is up to date"
  else
    build_redis_image
  fi
}

main "$@"
