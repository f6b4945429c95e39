#!/usr/bin/env bash
# Builds a kind node image for KUBERNETES_VERSION without any container
# registry, and prints its name on stdout.
#
# `kind build node-image` cannot do this offline: it pulls etcd, CoreDNS,
# pause, kindnetd and the storage images inside its build container. This
# script does the same steps as kind's pkg/build/nodeimage by hand:
#  1. binaries built from the Go module proxy (build-binaries.sh);
#  2. the base image (build-base-image.sh);
#  3. one image per `kubeadm config images list` entry, from those binaries;
#  4. a container from the base with kubeadm/kubelet/kubectl/crictl in it, the
#     images imported into its containerd (`ctr -n k8s.io images import`, no
#     unpack, as kind does), a CNI config (no kindnet: the cluster config sets
#     disableDefaultCNI), then `docker commit`.
# The tag carries a hash of scripts/kind, so an edit there builds anew and
# an unchanged tree reuses the image left in Docker by the last run.
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "$0")/lib.sh"

# Set by main; the cleanup trap reads work, cid and built.
KUBE_BIN_DIR=""
IPTABLES_IMAGE=""
work=""
cid=""
built=()
images=()
declare -A local_tag=()

cleanup() {
  [ -z "${cid}" ] || docker rm -f -v "${cid}" >/dev/null
  [ "${#built[@]}" -eq 0 ] || docker rmi "${built[@]}" >/dev/null
  rm -rf "${work}"
}

# Debian with iptables, for kube-proxy (kept in Docker as a cache).
build_iptables_image() {
  local cmd
  if ! docker image inspect "${IPTABLES_IMAGE}" >/dev/null 2>&1; then
    debootstrap_rootfs "${work}/iptables" iptables conntrack
    for cmd in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
      install -m 0755 "${KIND_SCRIPTS}/files/iptables-mode" "${work}/iptables/usr/sbin/${cmd}"
    done
    import_rootfs "${work}/iptables" "${IPTABLES_IMAGE}" 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    rm -rf "${work}/iptables"
  fi
}

# A rootfs with one static binary, CA certificates and a passwd file.
static_rootfs() { # dir binary destination
  mkdir -p "$1/etc/ssl/certs" "$1/tmp" "$(dirname "$1$3")"
  chmod 1777 "$1/tmp"
  install -m 0755 "${KUBE_BIN_DIR}/$2" "$1$3"
  cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$1/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$1/etc/group"
}

# --- 3. component images: one per `kubeadm config images list` entry ------------
build_component_images() {
  local image name bin tag dir proxy
  for image in "${images[@]}"; do
    name="${image##*/}"      # kube-apiserver:v1.34.1
    bin="${name%%:*}"        # kube-apiserver
    tag="wq.local/k8s-${bin}:${name#*:}"
    dir="${work}/${bin}"
    case "${bin}" in
      kube-proxy)
        log "kube-proxy on ${IPTABLES_IMAGE}: ${tag}"
        proxy="$(docker create --entrypoint /usr/local/bin/kube-proxy "${IPTABLES_IMAGE}")"
        docker cp "${KUBE_BIN_DIR}/kube-proxy" "${proxy}:/usr/local/bin/kube-proxy"
        docker commit "${proxy}" "${tag}" >/dev/null
        docker rm "${proxy}" >/dev/null
        ;;
      kube-apiserver | kube-controller-manager | kube-scheduler | etcd)
        static_rootfs "${dir}" "${bin}" "/usr/local/bin/${bin}"
        import_rootfs "${dir}" "${tag}" 'ENV PATH=/usr/local/bin:/usr/bin:/bin' "ENTRYPOINT [\"/usr/local/bin/${bin}\"]"
        ;;
      coredns)
        static_rootfs "${dir}" coredns /coredns
        import_rootfs "${dir}" "${tag}" 'ENTRYPOINT ["/coredns"]'
        ;;
      pause)
        static_rootfs "${dir}" pause /pause
        import_rootfs "${dir}" "${tag}" 'ENTRYPOINT ["/pause"]'
        ;;
      *) die "no recipe for image ${image}" ;;
    esac
    built+=("${tag}")
    local_tag["${image}"]="${tag}"
  done
}

# --- 4. the node layer: build_node BASE_IMAGE NODE_IMAGE --------------------------
build_node() {
  local pause_image bin image
  pause_image="$(printf '%s\n' "${images[@]}" | grep '/pause:')"
  cid="$(docker run -d --entrypoint=sleep --security-opt seccomp=unconfined "$1" infinity)"
  for bin in kubeadm kubelet kubectl; do
    docker cp "${KUBE_BIN_DIR}/${bin}" "${cid}:/usr/bin/${bin}"
  done
  docker cp "${KUBE_BIN_DIR}/crictl" "${cid}:/usr/local/bin/crictl"
  docker exec "${cid}" mkdir -p /etc/cni/net.d
  docker cp "${KIND_SCRIPTS}/files/10-wq-ptp.conflist" "${cid}:/etc/cni/net.d/10-wq-ptp.conflist"
  docker exec "${cid}" bash -euo pipefail -c "
    chown root:root /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl /usr/local/bin/crictl /etc/cni/net.d/*
    chmod 0755 /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl /usr/local/bin/crictl
    echo -n '${KUBERNETES_VERSION}' > /kind/version
    sed -i 's#sandbox_image = .*#sandbox_image = \"${pause_image}\"#' /etc/containerd/config.toml
    grep -q 'sandbox_image = \"${pause_image}\"' /etc/containerd/config.toml
    # Never ask runc for an oom_score_adj below containerd's own: lowering it
    # needs CAP_SYS_RESOURCE, which hosts with a reduced bounding set lack (every
    # pod sandbox then fails: \"can't get final child's PID from pipe\"). Where
    # containerd runs at -999 as its unit asks, this changes nothing.
    sed -i 's#restrict_oom_score_adj = false#restrict_oom_score_adj = true#' /etc/containerd/config.toml
    grep -q 'restrict_oom_score_adj = true' /etc/containerd/config.toml
    nohup containerd >/var/log/containerd-build.log 2>&1 &
    for i in \$(seq 1 30); do [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && exit 0; sleep 1; done
    cat /var/log/containerd-build.log >&2
    exit 1
  "
  for image in "${images[@]}"; do
    log "importing ${image}"
    docker save "${local_tag[${image}]}" | docker exec -i "${cid}" ctr --namespace=k8s.io images import \
      --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack - >/dev/null
    docker exec "${cid}" ctr --namespace=k8s.io images tag --force "${local_tag[${image}]}" "${image}" >/dev/null
    docker exec "${cid}" ctr --namespace=k8s.io images rm "${local_tag[${image}]}" >/dev/null
  done
  docker exec "${cid}" bash -euo pipefail -c '
    ctr --namespace=k8s.io images list -q >&2
    pkill -x containerd
    for i in $(seq 1 30); do pgrep -x containerd >/dev/null || break; sleep 1; done
    ! pgrep -x containerd >/dev/null
    rm -f /var/log/containerd-build.log
  '
  docker commit \
    --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
    --change 'CMD []' \
    "${cid}" "$2" >/dev/null
}

main() {
  # Stdout carries the image name alone (kind-up.sh captures it): everything the build
  # steps print goes to stderr, and fd 3 is the real stdout.
  exec 3>&1 1>&2
  local node_image base_image
  node_image="${KIND_NODE_IMAGE:-wq.local/kind-node:${KUBERNETES_VERSION}-$(inputs_hash)}"
  if docker image inspect "${node_image}" >/dev/null 2>&1; then
    log "node image ${node_image} exists"
    echo "${node_image}" >&3
    return 0
  fi

  KUBE_BIN_DIR="$(kube_bin_dir)"
  base_image="$(kind_base_image)"
  "${KIND_SCRIPTS}/build-binaries.sh" >/dev/null
  "${KIND_SCRIPTS}/build-base-image.sh"

  work="$(mktemp -d "${TMPDIR:-/tmp}/wq-kind-node.XXXXXX")"
  trap cleanup EXIT

  mapfile -t images < <("${KUBE_BIN_DIR}/kubeadm" config images list \
    --kubernetes-version "${KUBERNETES_VERSION}")
  [ "${#images[@]}" -ge 5 ] || die "kubeadm listed too few images: ${images[*]}"
  log "images: ${images[*]}"
  IPTABLES_IMAGE="wq.local/debian-iptables:${DEBIAN_SUITE}-$(files_hash files/iptables-mode)"
  build_iptables_image
  build_component_images
  build_node "${base_image}" "${node_image}"
  log "built ${node_image}"
  remove_stale_tags wq.local/kind-node "${node_image}"
  remove_stale_tags wq.local/debian-iptables "${IPTABLES_IMAGE}"
  echo "${node_image}" >&3
}

main "$@"
