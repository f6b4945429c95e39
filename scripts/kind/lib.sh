# shellcheck shell=bash disable=SC2034  # variables are for the sourcing scripts
# Shared settings and functions for scripts/kind/*.sh and scripts/images/*.sh (sourced).
# As in kind's hack/ scripts, sourcing only sets constants and defines functions:
# anything that takes work and can fail (the Debian mirror, content hashes, the image
# names that carry them) is a function, called by the scripts that need it, so that
# e.g. kind-down.sh runs on a host whose apt sources name no Debian mirror.
# Versions come from the Makefile; the defaults here only serve direct runs.

KIND_VERSION="${KIND_VERSION:-v0.30.0}"
KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.34.1}"
PAUSE_VERSION="${PAUSE_VERSION:-3.10.1}"
# No etcd or CoreDNS version here: what build-binaries.sh builds is pinned by the
# go.mod of etcd-build and coredns-build (MODULE_FILES, so already in kube_bin_dir and
# inputs_hash), and the tags their images get in the node come from `kubeadm config
# images list` (build-node-image.sh), i.e. from kubeadm's constants. A copy here fed only
# the hash and could silently disagree with both. When bumping Kubernetes, set those
# go.mod pins to the versions kubeadm lists.
# bookworm, not trixie: the machines run cgroup v1, which trixie's systemd refuses.
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"

KIND_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${KIND_SCRIPTS}/../.." && pwd)"
# Heavy artifacts live outside the work tree so that a fresh clone on the same
# machine (CI) reuses them; paths carry the versions.
WQ_CACHE="${WQ_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/wq}"
# Go wrapper modules (go.mod + go.sum each, relative to scripts/kind) that pin what
# build-binaries.sh builds.
MODULE_FILES=(
  kube-build/go.mod kube-build/go.sum
  etcd-build/go.mod etcd-build/go.sum
  coredns-build/go.mod coredns-build/go.sum
  crictl-build/go.mod crictl-build/go.sum
)
OFFICIAL_NODE_IMAGE="kindest/node:${KUBERNETES_VERSION}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

files_hash() { # paths relative to scripts/kind -> short content hash
  (cd "${KIND_SCRIPTS}" && cat "$@") | sha256sum | cut -c1-8
}

# The Debian mirror for debootstrap: DEBIAN_MIRROR, else the one this host's apt
# already uses (deb822 or one-line sources), so that debootstrap goes where apt-get goes.
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then
    printf '%s\n' "${DEBIAN_MIRROR}"
    return 0
  fi
  local uri
  uri="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
  if [ -z "${uri}" ]; then
    uri="$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  fi
  [ -n "${uri}" ] || { printf 'no Debian mirror in /etc/apt: set DEBIAN_MIRROR\n' >&2; return 1; }
  printf '%s\n' "${uri}"
}

# The directory of the built binaries, keyed by the wrapper modules' pins.
kube_bin_dir() {
  local hash
  hash="$(files_hash "${MODULE_FILES[@]}")" || return
  printf '%s\n' "${WQ_CACHE}/kind/bin-${KUBERNETES_VERSION}-${hash}"
}

# Hash of the versions and files that shape the node image, so an edit
# rebuilds it and an unchanged tree reuses the one left in Docker.
inputs_hash() {
  (
    cd "${KIND_SCRIPTS}" || exit 1
    printf '%s\n' "${KIND_VERSION}" "${KUBERNETES_VERSION}" "${PAUSE_VERSION}" "${DEBIAN_SUITE}"
    sha256sum lib.sh build-binaries.sh build-base-image.sh build-node-image.sh \
      "${MODULE_FILES[@]}" files/*
  ) | sha256sum | cut -c1-12
}

# The kind base image this project builds itself (never tagged `latest`):
# KIND_BASE_IMAGE, else a tag carrying a hash of build-base-image.sh.
kind_base_image() {
  if [ -n "${KIND_BASE_IMAGE:-}" ]; then
    printf '%s\n' "${KIND_BASE_IMAGE}"
    return 0
  fi
  local hash
  hash="$(files_hash build-base-image.sh)" || return
  printf '%s\n' "wq.local/kind-base:${KIND_VERSION}-${DEBIAN_SUITE}-${hash}"
}

need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (debootstrap, chroot)"; }

ensure_apt_packages() { # command package [command package ...]
  local missing=()
  while [ "$#" -gt 0 ]; do
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
    shift 2
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  need_root "installing ${missing[*]}"
  log "installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# debootstrap_rootfs DIR PACKAGE...: a minbase Debian rootfs with PACKAGES,
# downloads shared through one cache dir.
debootstrap_rootfs() {
  local dir="$1"
  shift
  need_root debootstrap
  local mirror include
  mirror="$(debian_mirror)" || exit 1
  ensure_apt_packages debootstrap debootstrap
  include="$(IFS=,; echo "$*")"
  mkdir -p "${WQ_CACHE}/debootstrap-debs"
  log "debootstrap ${DEBIAN_SUITE} (+ ${include}) into ${dir}"
  debootstrap --variant=minbase --cache-dir="${WQ_CACHE}/debootstrap-debs" \
    --include="${include}" "${DEBIAN_SUITE}" "${dir}" "${mirror}" \
    >"${dir}.debootstrap.log" 2>&1 ||
    { tail -n 30 "${dir}.debootstrap.log" >&2; die "debootstrap failed (log: ${dir}.debootstrap.log)"; }
  # Container images need no docs, man pages, locales nor apt lists.
  rm -rf "${dir}"/usr/share/doc/* "${dir}"/usr/share/man/* "${dir}"/usr/share/info/* \
    "${dir}"/usr/share/locale/* "${dir}"/var/lib/apt/lists/* "${dir}"/var/cache/apt/*.bin \
    "${dir}"/var/cache/apt/archives/*.deb "${dir}"/var/log/*.log
}

# import_rootfs DIR TAG [INSTRUCTION...]: tar DIR into image TAG with
# Dockerfile instructions (ENV, ENTRYPOINT, LABEL, ...) as `--change`s.
# `docker import` takes no STOPSIGNAL: with one, the instructions go on top
# through the classic builder instead, which never pulls.
import_rootfs() {
  local dir="$1" tag="$2" instruction changes=() build=false out
  shift 2
  for instruction in "$@"; do
    changes+=(--change "${instruction}")
    [[ "${instruction}" != STOPSIGNAL* ]] || build=true
  done
  log "docker import ${tag}"
  if [ "${build}" = false ]; then
    tar --numeric-owner -C "${dir}" -c . | docker import "${changes[@]}" - "${tag}" >/dev/null
    return 0
  fi
  tar --numeric-owner -C "${dir}" -c . | docker import - "${tag}-rootfs" >/dev/null
  if ! out="$( { echo "FROM ${tag}-rootfs"; printf '%s\n' "$@"; } |
    DOCKER_BUILDKIT=0 docker build -q -t "${tag}" - 2>&1)"; then
    printf '%s\n' "${out}" >&2
    die "docker build of ${tag} failed"
  fi
  docker rmi "${tag}-rootfs" >/dev/null
}

# remove_stale_tags REPOSITORY KEEP: drop the other tags of REPOSITORY (older
# builds, each up to a GB) that no container uses.
remove_stale_tags() {
  local repo="$1" keep="$2" image
  while read -r image; do
    [ "${image}" != "${keep}" ] || continue
    if [ -z "$(docker ps -aq --filter "ancestor=${image}")" ]; then
      log "removing stale image ${image}"
      docker rmi "${image}" >/dev/null
    fi
  done < <(docker images --format '{{.Repository}}:{{.Tag}}' "${repo}")
}

# push_and_apply IMAGE MANIFEST: IMAGE (built by the caller's build_image
# unless Docker has it) pushed to the cluster's registry, then MANIFEST
# applied with its `image: IMAGE` placeholder set to the pushed reference.
push_and_apply() {
  local image="$1" manifest="$2" repo ref
  repo="${image%%:*}"
  ref="localhost:${REGISTRY_PORT}/${repo##*/}:${image##*:}"
  docker image inspect "${image}" >/dev/null 2>&1 || build_image "${image}"
  docker tag "${image}" "${ref}"
  docker push -q "${ref}" >/dev/null
  sed "s#image: IMAGE#image: ${ref}#" "${manifest}" | kubectl apply -f - >/dev/null
}

# go_binary NAME PACKAGE VERSION: PACKAGE@VERSION built from the Go module
# proxy, once, into the cache (static, stripped); prints the binary's path.
go_binary() {
  local name="$1" package="$2" version="$3" dir
  dir="${WQ_CACHE}/kind/${name}-${version}"
  if [ ! -x "${dir}/${name}" ]; then
    mkdir -p "${dir}"
    "${REPO_ROOT}/scripts/run-logged.sh" "building ${name} ${version}" -- \
      env CGO_ENABLED=0 GOBIN="${dir}" go install -trimpath -ldflags '-s -w' \
      "${package}@${version}"
  fi
  printf '%s\n' "${dir}/${name}"
}
