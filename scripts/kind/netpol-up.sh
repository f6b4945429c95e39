#!/usr/bin/env bash
# Makes the test cluster enforce NetworkPolicy, as the clusters users run do: kind's own
# networking does (kindnet with kube-network-policies beside it, since kind v0.24, on the
# official node images), the CNI of the node image built here does not. So on a cluster
# without kindnet this runs kube-router's network policy controller alone (iptables and
# ipsets) as a DaemonSet, and waits until it is ready. Idempotent; nothing with kindnet.
#
# Why kube-router: kube-network-policies, which the issue suggests, needs nftables' `queue`
# expression, and this machine's kernel has none ("nft add rule ... queue num 98" fails with
# "No such file or directory"), while iptables with ipset match works. kube-router v2.1.0 is
# the only version the Go module proxy serves; advisories are reported against it, so it runs
# only inside this throwaway local test cluster and is never part of what wq ships.
# Its image: a Debian rootfs with iptables and ipset (debootstrap, as for kube-proxy) and the
# binary, built from the Go module proxy and cached per version.
# Known side effect: kube-router rewrites the whole filter table (iptables-save/-restore),
# racing kube-proxy; in the moment a Service gets its first endpoint, a connection to it can
# leave by the node's default route (here reaching a proxy that answers HTTP 400). wq waits
# such replies out like an outage (wq/connection.py), as it would a mesh sidecar's.
# Settings: KUBE_ROUTER_VERSION, REGISTRY_PORT, KUBECONFIG (from the Makefile).
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "$0")/lib.sh"

VERSION="${KUBE_ROUTER_VERSION:-v2.1.0}"
REGISTRY_PORT="${REGISTRY_PORT:-5001}"
MODULE=github.com/cloudnativelabs/kube-router/v2
work=""

cleanup() { [ -z "${work}" ] || rm -rf "${work}"; }

build_image() { # tag
  local binary cmd
  binary="$(go_binary kube-router "${MODULE}/cmd/kube-router" "${VERSION}")"
  work="$(mktemp -d "${TMPDIR:-/tmp}/wq-netpol.XXXXXX")"
  debootstrap_rootfs "${work}/rootfs" iptables ipset
  # The iptables backend (nft or legacy) the node already uses, as for kube-proxy.
  for cmd in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    install -m 0755 "${KIND_SCRIPTS}/files/iptables-mode" "${work}/rootfs/usr/sbin/${cmd}"
  done
  install -m 0755 "${binary}" "${work}/rootfs/usr/local/bin/kube-router"
  import_rootfs "${work}/rootfs" "$1" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'ENTRYPOINT ["/usr/local/bin/kube-router"]'
}

main() {
  trap cleanup EXIT
  : "${KUBECONFIG:?set KUBECONFIG to the cluster kubeconfig file}"
  if kubectl -n kube-system get daemonset kindnet >/dev/null 2>&1; then
    log "kind's own networking (kindnet) enforces NetworkPolicy on this cluster"
    return 0
  fi
  local image
  image="wq.local/kube-router:${VERSION}-$(files_hash netpol-up.sh files/iptables-mode)"
  push_and_apply "${image}" "${KIND_SCRIPTS}/netpol/kube-router.yaml"
  kubectl -n kube-system rollout status daemonset/kube-router --timeout=180s >&2
  remove_stale_tags wq.local/kube-router "${image}"
  log "kube-router ${VERSION} enforces NetworkPolicy"
}

main "$@"
