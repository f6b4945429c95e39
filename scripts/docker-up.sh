#!/usr/bin/env bash
# Makes sure a Docker engine is running, for `make kind-up` and CI.
#  - Installs Debian's docker.io when there is no dockerd.
#  - On hosts whose capability bounding set lacks capabilities that
#    `docker run --privileged` asks for (some CI sandboxes: CAP_SYS_RESOURCE),
#    installs scripts/docker/runc-capfilter as dockerd's default runtime;
#    without it every kind node fails with "unable to apply caps".
#    Hosts with the full set (a normal workstation) are left alone.
#  - Starts dockerd in the background (log: ${DOCKERD_LOG}) unless one runs,
#    and waits for `docker info`.
# Idempotent: a second run changes nothing and returns at once.
set -euo pipefail

DOCKERD_LOG="${DOCKERD_LOG:-/var/log/wq-dockerd.log}"
WRAPPER_SRC="$(cd "$(dirname "$0")" && pwd)/docker/runc-capfilter"
WRAPPER="/usr/local/libexec/wq/runc-capfilter"
DAEMON_JSON="/etc/docker/daemon.json"

log() { printf '[docker-up] %s\n' "$*" >&2; }

install_docker() {
  log "installing Debian docker.io"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    docker.io iptables ca-certificates
}

# Capability bounding set: every cap the kernel knows, or fewer? If fewer, make
# the runc wrapper dockerd's default runtime.
use_capfilter_if_needed() {
  local last_cap bnd full want
  last_cap="$(cat /proc/sys/kernel/cap_last_cap)"
  bnd="$(awk '/^CapBnd:/ {print $2}' /proc/self/status)"
  full=$(( (1 << (last_cap + 1)) - 1 ))
  if (( (16#${bnd} & full) != full )); then
    log "capability bounding set ${bnd} is reduced: using ${WRAPPER} as default runtime"
    install -D -m 0755 "${WRAPPER_SRC}" "${WRAPPER}"
    mkdir -p "$(dirname "${DAEMON_JSON}")"
    want="$(python3 - "${DAEMON_JSON}" "${WRAPPER}" <<'PY'
import json, os, sys
path, wrapper = sys.argv[1], sys.argv[2]
cfg = json.load(open(path)) if os.path.exists(path) else {}
cfg.setdefault("runtimes", {})["wq-runc"] = {"path": wrapper}
cfg["default-runtime"] = "wq-runc"
print(json.dumps(cfg, indent=2, sort_keys=True))
PY
)"
    if [ "$(cat "${DAEMON_JSON}" 2>/dev/null)" != "${want}" ]; then
      printf '%s\n' "${want}" > "${DAEMON_JSON}"
    fi
  fi
}

main() {
  if docker info >/dev/null 2>&1; then
    log "dockerd is already running"
    return 0
  fi

  [ "$(id -u)" = 0 ] || { log "ERROR: dockerd is not running and starting it needs root"; exit 1; }

  if ! command -v dockerd >/dev/null 2>&1; then
    install_docker
  fi
  use_capfilter_if_needed

  # A dockerd without a working socket (crashed, or still starting)?
  if pgrep -x dockerd >/dev/null; then
    log "dockerd process exists, waiting for it"
  else
    log "starting dockerd (log: ${DOCKERD_LOG})"
    mkdir -p "$(dirname "${DOCKERD_LOG}")"
    nohup dockerd >>"${DOCKERD_LOG}" 2>&1 </dev/null &
  fi

  local _
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
      log "dockerd is ready ($(docker version --format '{{.Server.Version}}'))"
      return 0
    fi
    sleep 1
  done
  log "ERROR: dockerd did not answer within 60s; last lines of ${DOCKERD_LOG}:"
  tail -n 30 "${DOCKERD_LOG}" >&2 || true
  exit 1
}

main "$@"
