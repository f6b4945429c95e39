#!/usr/bin/env bash
# Builds the kind base image (kind_base_image in lib.sh) offline: what kind's
# images/base/Dockerfile makes from debian:bookworm-slim, but from a
# debootstrap rootfs, with Debian's containerd 1.6, runc and CNI plugins
# instead of release downloads (crictl comes with the node layer, see
# build-node-image.sh). kind's own base-image files (entrypoint, unit files,
# containerd config, /kind/bin) come from the sigs.k8s.io/kind module at
# KIND_VERSION. The image tag carries a hash of this script.
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "$0")/lib.sh"

work=""  # set by main, removed on exit

# The files kind's images/base/Dockerfile copies in, from the sigs.k8s.io/kind module
# at KIND_VERSION, and links to Debian's runtime binaries where those files expect them.
install_kind_files() { # rootfs
  local rootfs="$1" kind_dir files
  kind_dir="$(go mod download -json "sigs.k8s.io/kind@${KIND_VERSION}" |
    sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  files="${kind_dir}/images/base/files"
  [ -f "${files}/usr/local/bin/entrypoint" ] || die "no kind base files in ${kind_dir}"

  # COPY steps of the Dockerfile, with its modes (module files are read-only).
  install -m 0755 -t "${rootfs}/usr/local/bin" "${files}"/usr/local/bin/*
  mkdir -p "${rootfs}/kind/bin" "${rootfs}/LICENSES" "${rootfs}/etc/containerd" \
    "${rootfs}/etc/kubernetes/manifests" "${rootfs}/etc/systemd/system/kubelet.service.d"
  install -m 0644 "${files}/kind/README.txt" "${rootfs}/kind/"
  install -m 0755 -t "${rootfs}/kind/bin" "${files}"/kind/bin/*
  install -m 0644 "${files}/LICENSES/README.txt" "${rootfs}/LICENSES/"
  install -m 0644 "${files}/etc/crictl.yaml" "${rootfs}/etc/"
  install -m 0644 -t "${rootfs}/etc/containerd" "${files}"/etc/containerd/*
  install -m 0644 -t "${rootfs}/etc/default" "${files}"/etc/default/*
  install -m 0644 -t "${rootfs}/etc/sysctl.d" "${files}"/etc/sysctl.d/*
  install -m 0644 -t "${rootfs}/etc/systemd/system" "${files}"/etc/systemd/system/*.service \
    "${files}"/etc/systemd/system/*.slice
  install -m 0644 -t "${rootfs}/etc/systemd/system/kubelet.service.d" \
    "${files}"/etc/systemd/system/kubelet.service.d/*

  # Where kind's files expect the runtime binaries kind builds itself.
  ln -sf /usr/bin/containerd "${rootfs}/usr/local/bin/containerd"
  ln -sf /usr/bin/ctr "${rootfs}/usr/local/bin/ctr"
  ln -sf /usr/bin/containerd-shim-runc-v2 "${rootfs}/usr/local/bin/containerd-shim-runc-v2"
  mkdir -p "${rootfs}/usr/local/sbin" "${rootfs}/opt/cni"
  ln -sf /usr/sbin/runc "${rootfs}/usr/local/sbin/runc"
  ln -sfn /usr/lib/cni "${rootfs}/opt/cni/bin"
}

run_dockerfile_steps() { # rootfs
  # shellcheck disable=SC2016  # expanded inside the chroot
  chroot "$1" /bin/bash -euo pipefail -c '
    find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
    rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
    echo "ReadKMsg=no" >> /etc/systemd/journald.conf
    ln -sf "$(command -v systemd || echo /lib/systemd/systemd)" /sbin/init
    systemctl enable kubelet.service containerd.service undo-mount-hacks.service
    systemctl mask systemd-binfmt.service
    ctr oci spec |
      jq ".hooks.createContainer[.hooks.createContainer | length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" |
      jq "del(.process.rlimits)" > /etc/containerd/cri-base.json
    containerd --version
  '
}

main() {
  local image rootfs
  image="$(kind_base_image)"
  if docker image inspect "${image}" >/dev/null 2>&1; then
    log "base image ${image} exists"
    return 0
  fi
  need_root "building ${image}"

  work="$(mktemp -d "${TMPDIR:-/tmp}/wq-kind-base.XXXXXX")"
  trap 'rm -rf "${work}"' EXIT
  rootfs="${work}/rootfs"

  # The packages kind's base Dockerfile installs, minus nfs/iscsi/fuse (unused
  # here), plus the container runtime from Debian.
  debootstrap_rootfs "${rootfs}" \
    systemd conntrack iptables nftables iproute2 ethtool util-linux mount kmod \
    libseccomp2 pigz bash ca-certificates curl jq procps \
    containerd runc containernetworking-plugins
  install_kind_files "${rootfs}"
  run_dockerfile_steps "${rootfs}"
  import_rootfs "${rootfs}" "${image}" \
    'ENV container=docker' \
    'STOPSIGNAL SIGRTMIN+3' \
    'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]'
  log "built ${image}"
  remove_stale_tags wq.local/kind-base "${image}"
}

main "$@"
