#!/usr/bin/env bash
# Creates the test cluster ${KIND_CLUSTER} (one node) unless it is running,
# and writes its kubeconfig to ${KUBECONFIG} (never the user's own).
# Node image: KIND_NODE_IMAGE if set; else kindest/node:${KUBERNETES_VERSION}
# if present locally or pullable; else one built here without any registry
# (build-node-image.sh), which brings its own CNI config instead of kindnet.
# The nodes pull from the local registry (registry-up.sh) under its host-side name
# localhost:${REGISTRY_PORT}, as in kind's "Local Registry" guide: no `kind load`.
# NetworkPolicy is enforced: by kindnet, or by kube-router's controller (netpol-up.sh).
# The default StorageClass is a dynamic provisioner's: kind's own local-path-provisioner, or
# the same one run here (storage-up.sh).
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "$0")/lib.sh"

KIND="${KIND:-kind}"
KIND_CLUSTER="${KIND_CLUSTER:-wq-e2e}"
REGISTRY_NAME="${REGISTRY_NAME:-wq-registry}"
REGISTRY_PORT="${REGISTRY_PORT:-5001}"
ARTIFACTS="${ARTIFACTS:-${REPO_ROOT}/_artifacts}"
config=""

node_running() {
  [ "$(docker inspect -f '{{.State.Running}}' "${KIND_CLUSTER}-control-plane" 2>/dev/null)" = true ]
}

cluster_config() { # official_cni (true|false) -> the kind cluster config on stdout
  echo 'kind: Cluster'
  echo 'apiVersion: kind.x-k8s.io/v1alpha4'
  echo 'networking:'
  # Must match scripts/kind/files/10-wq-ptp.conflist.
  echo '  podSubnet: 10.244.0.0/16'
  if [ "$1" = false ]; then
    echo '  disableDefaultCNI: true'
    # kindest/node images from kind v0.27 on read /etc/containerd/certs.d already; the
    # node image built here runs Debian's containerd 1.6, which needs to be told.
    echo 'containerdConfigPatches:'
    echo '- |-'
    echo '  [plugins."io.containerd.grpc.v1.cri".registry]'
    echo '    config_path = "/etc/containerd/certs.d"'
  fi
  # The e2e tests start a dozen pods at once on a fresh node, each pulling a new image tag: the
  # kubelet's default of 5 pulls a second (burst 10) failed some with "pull QPS exceeded".
  echo 'kubeadmConfigPatches:'
  echo '- |'
  echo '  kind: KubeletConfiguration'
  echo '  registryPullQPS: 50'
  echo '  registryBurst: 100'
  echo 'nodes:'
  echo '- role: control-plane'
}

# The nodes resolve localhost:PORT to the registry container on the kind network, and the
# cluster documents it (KEP-1755's local-registry-hosting ConfigMap). Idempotent.
connect_registry() {
  "${KIND_SCRIPTS}/registry-up.sh" >/dev/null
  if ! docker inspect -f '{{json .NetworkSettings.Networks}}' "${REGISTRY_NAME}" | grep -q '"kind"'; then
    docker network connect kind "${REGISTRY_NAME}"
  fi
  local node dir="/etc/containerd/certs.d/localhost:${REGISTRY_PORT}"
  for node in $("${KIND}" get nodes --name "${KIND_CLUSTER}"); do
    docker exec "${node}" mkdir -p "${dir}"
    printf '[host."http://%s:5000"]\n' "${REGISTRY_NAME}" |
      docker exec -i "${node}" cp /dev/stdin "${dir}/hosts.toml"
  done
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "localhost:${REGISTRY_PORT}"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
EOF
  log "nodes pull localhost:${REGISTRY_PORT}/* from registry ${REGISTRY_NAME}"
}

main() {
  : "${KUBECONFIG:?set KUBECONFIG to the file for the cluster credentials}"
  export KUBECONFIG
  mkdir -p "$(dirname "${KUBECONFIG}")"

  if "${KIND}" get clusters 2>/dev/null | grep -qx "${KIND_CLUSTER}"; then
    if node_running; then
      log "cluster ${KIND_CLUSTER} is running; reusing it"
      "${KIND}" export kubeconfig --name "${KIND_CLUSTER}" --kubeconfig "${KUBECONFIG}" 2>/dev/null
      kubectl wait --for=condition=Ready node --all --timeout=120s >&2
      connect_registry
      "${KIND_SCRIPTS}/netpol-up.sh"
      "${KIND_SCRIPTS}/storage-up.sh"
      return 0
    fi
    log "cluster ${KIND_CLUSTER} exists but its node is not running: recreating it"
    "${KIND}" delete cluster --name "${KIND_CLUSTER}" --kubeconfig "${KUBECONFIG}"
  fi

  local image official_cni=true
  if [ -n "${KIND_NODE_IMAGE:-}" ]; then
    image="${KIND_NODE_IMAGE}"
    docker image inspect "${image}" >/dev/null 2>&1 || image="$("${KIND_SCRIPTS}/build-node-image.sh")"
    case "${image}" in wq.local/*) official_cni=false ;; esac
  elif docker image inspect "${OFFICIAL_NODE_IMAGE}" >/dev/null 2>&1 ||
    timeout 60 docker pull -q "${OFFICIAL_NODE_IMAGE}" >/dev/null 2>&1; then
    image="${OFFICIAL_NODE_IMAGE}"
  else
    log "${OFFICIAL_NODE_IMAGE} cannot be pulled: using a node image built here"
    image="$("${KIND_SCRIPTS}/build-node-image.sh")"
    official_cni=false
  fi

  config="$(mktemp)"
  trap 'rm -f "${config}"' EXIT
  cluster_config "${official_cni}" >"${config}"

  log "creating cluster ${KIND_CLUSTER} from ${image}"
  if ! "${KIND}" create cluster --name "${KIND_CLUSTER}" --image "${image}" \
    --config "${config}" --kubeconfig "${KUBECONFIG}" --wait 5m --retain; then
    log "cluster creation failed; logs in ${ARTIFACTS}/kind-up"
    "${KIND}" export logs "${ARTIFACTS}/kind-up" --name "${KIND_CLUSTER}" >&2 || true
    "${KIND}" delete cluster --name "${KIND_CLUSTER}" --kubeconfig "${KUBECONFIG}" >&2 || true
    exit 1
  fi
  if ! kubectl -n kube-system rollout status deployment/coredns --timeout=180s >&2; then
    kubectl -n kube-system get pods -o wide >&2
    kubectl -n kube-system describe pods -l k8s-app=kube-dns >&2
    exit 1
  fi
  connect_registry
  "${KIND_SCRIPTS}/netpol-up.sh"
  "${KIND_SCRIPTS}/storage-up.sh"
  log "cluster ${KIND_CLUSTER} is up (KUBECONFIG=${KUBECONFIG})"
}

main "$@"
