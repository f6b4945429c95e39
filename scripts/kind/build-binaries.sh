#!/usr/bin/env bash
# Builds the Kubernetes, etcd, CoreDNS and crictl binaries of the pinned versions from
# the Go module proxy into the cache directory kube_bin_dir (lib.sh) names, and the
# pause binary with gcc.
# Each binary is skipped when already built (the directory is keyed by the
# wrapper modules' go.mod/go.sum); with a warm Go build cache
# (~/.cache/go-build) rebuilding all of them is a relink of about a minute.
# Usage: build-binaries.sh [NAME...]  (default: all); prints the directory.
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "$0")/lib.sh"

KUBE_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl)
OTHERS=(etcd coredns crictl pause)
# Set by main: the binaries asked for, where they go, a scratch directory, the step count.
WANTED=()
STEP=0
STEPS=5
KUBE_BIN_DIR=""
tmp=""

wanted() { [[ " ${WANTED[*]} " == *" $1 "* ]]; }

# A long step with its output (go's download chatter, compiler output) in a log file.
# Each build function counts itself as a step first, built or not, so the numbers hold.
step() { # label command...
  "${REPO_ROOT}/scripts/run-logged.sh" "step ${STEP}/${STEPS}: $1" -- "${@:2}"
}

module_version() { # go.mod dir, module path -> version it requires
  (cd "$1" && go list -m -f '{{.Version}}' "$2")
}

build_kubernetes() {
  STEP=$((STEP + 1))
  local dir="${KIND_SCRIPTS}/kube-build" want=() cmd have
  for cmd in "${KUBE_CMDS[@]}"; do
    wanted "${cmd}" || continue
    [ -x "${KUBE_BIN_DIR}/${cmd}" ] || want+=("k8s.io/kubernetes/cmd/${cmd}")
  done
  [ "${#want[@]}" -gt 0 ] || return 0
  have="$(module_version "${dir}" k8s.io/kubernetes)"
  [ "${have}" = "${KUBERNETES_VERSION}" ] ||
    die "scripts/kind/kube-build requires k8s.io/kubernetes ${have}, KUBERNETES_VERSION is ${KUBERNETES_VERSION}: update its go.mod (see its header)"
  # The version variables hack/lib/version.sh sets; kubeadm reads gitVersion
  # to pick the control-plane image tags. The build date is the tag's date.
  local v="${KUBERNETES_VERSION#v}" date ldflags="" pkg key val
  date="$(go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" |
    sed -n 's/.*"Time": "\(.*\)".*/\1/p' | head -1)"
  date="${date:-1970-01-01T00:00:00Z}"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    for key in gitVersion gitMajor gitMinor buildDate gitTreeState; do
      case "${key}" in
        gitVersion) val="${KUBERNETES_VERSION}" ;;
        gitMajor) val="${v%%.*}" ;;
        gitMinor) val="$(echo "${v}" | cut -d. -f2)" ;;
        buildDate) val="${date}" ;;
        gitTreeState) val="archive" ;;
      esac
      ldflags+=" -X '${pkg}.${key}=${val}'"
    done
  done
  step "building ${want[*]##*/} (Kubernetes ${KUBERNETES_VERSION})" \
    go -C "${dir}" build -trimpath -tags selinux,notest,grpcnotrace \
    -ldflags "all=${ldflags} -s -w" -o "${tmp}/" "${want[@]}"
  mv "${tmp}"/* "${KUBE_BIN_DIR}/"
}

build_tool() { # module dir, package, binary name
  STEP=$((STEP + 1))
  local dir="$1" pkg="$2" name="$3"
  wanted "${name}" || return 0
  [ -x "${KUBE_BIN_DIR}/${name}" ] && return 0
  step "building ${name} ($(module_version "${dir}" "${pkg%/cmd/*}"))" \
    go -C "${dir}" build -trimpath -ldflags '-s -w' -o "${tmp}/${name}" "${pkg}"
  mv "${tmp}/${name}" "${KUBE_BIN_DIR}/${name}"
}

build_pause() {
  STEP=$((STEP + 1))
  wanted pause || return 0
  [ -x "${KUBE_BIN_DIR}/pause" ] && return 0
  local src
  src="$(go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" |
    sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/build/pause/linux/pause.c"
  [ -f "${src}" ] || die "no ${src}"
  step "building pause ${PAUSE_VERSION}" gcc -Os -Wall -Werror -static -DVERSION="v${PAUSE_VERSION}-wq" -o "${tmp}/pause" "${src}"
  strip "${tmp}/pause"
  mv "${tmp}/pause" "${KUBE_BIN_DIR}/pause"
}

main() {
  WANTED=("$@")
  [ "${#WANTED[@]}" -gt 0 ] || WANTED=("${KUBE_CMDS[@]}" "${OTHERS[@]}")
  export CGO_ENABLED=0
  # -p=2: the machines have two cores, shared with other work.
  export GOFLAGS="${GOFLAGS:--p=2} -mod=readonly -buildvcs=false"

  KUBE_BIN_DIR="$(kube_bin_dir)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "${tmp}"' EXIT
  mkdir -p "${KUBE_BIN_DIR}"

  build_kubernetes
  build_tool "${KIND_SCRIPTS}/etcd-build" go.etcd.io/etcd/server/v3 etcd
  build_tool "${KIND_SCRIPTS}/coredns-build" github.com/coredns/coredns coredns
  build_tool "${KIND_SCRIPTS}/crictl-build" sigs.k8s.io/cri-tools/cmd/crictl crictl
  build_pause
  # Directories of other versions are dead weight (~700 MB each).
  find "$(dirname "${KUBE_BIN_DIR}")" -mindepth 1 -maxdepth 1 -type d \
    ! -path "${KUBE_BIN_DIR}" -name 'bin-*' -exec rm -rf {} +
  echo "${KUBE_BIN_DIR}"
}

main "$@"
