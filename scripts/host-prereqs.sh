#!/usr/bin/env bash
# Makes sure the host has the programs `make test` and `make demo` run besides Go, Python and
# Docker (scripts/docker-up.sh sees to Docker): redis-server (the unit tests and benchmarks
# start their own), redis-cli and redis-benchmark (redis-tools), shellcheck (make lint),
# chromium and chromedriver (chromium-driver: the web page's browser test drives them).
#  - Everything there (whatever installed it): returns at once, printing nothing.
#  - Root with apt-get (Debian, Ubuntu): one `apt-get update`, then installs the missing
#    packages. The Debian package also starts a system redis on 6379; the tests use their own.
#  - Otherwise: one line naming what to install, exit 1.
# The Makefile's `prereqs` target runs it; so do .ci/run and the GitHub workflow.
set -euo pipefail

# program -> the Debian package that has it
declare -A PACKAGE_OF=(
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  [redis-benchmark]=redis-tools
  [shellcheck]=shellcheck
  [chromium]=chromium
  [chromedriver]=chromium-driver
)

log() { printf '[host-prereqs] %s\n' "$*" >&2; }

missing_packages() { # the packages of the programs not on PATH, once each, sorted
  local program
  for program in "${!PACKAGE_OF[@]}"; do
    if ! command -v "${program}" >/dev/null 2>&1; then
      printf '%s\n' "${PACKAGE_OF[${program}]}"
    fi
  done | sort -u
}

main() {
  local list packages=()
  list="$(missing_packages)"
  [ -n "${list}" ] || return 0
  mapfile -t packages <<<"${list}"
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "ERROR: missing ${packages[*]}: install them (on Debian this script does, as root: apt-get install -y ${packages[*]})"
    exit 1
  fi
  log "installing ${packages[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
}

main "$@"
