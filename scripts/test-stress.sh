#!/usr/bin/env bash
# The unit and fault suites, several rounds in a row, while busy loops keep every core
# busy: CI runs on a loaded 2-core machine, and a test that races the clock fails here
# first. `make test-stress` runs it.
#   PYTHON=.venv/bin/python ROUNDS=3 scripts/test-stress.sh [PYTEST_ARGS...]
set -euo pipefail

log() { printf '[test-stress %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

load_pids=()

stop_load() {
  local pid
  for pid in "${load_pids[@]}"; do
    # A busy loop that is already gone is what we want; any other failure is reported.
    kill "${pid}" 2>/dev/null || ! kill -0 "${pid}" 2>/dev/null ||
      log "could not stop busy loop ${pid}"
  done
}

main() {
  cd "$(dirname "$0")/.."
  local python="${PYTHON:?set PYTHON to the venv interpreter (make test-stress does)}"
  local rounds="${ROUNDS:-3}" cores round started
  cores="$(nproc)"
  trap stop_load EXIT
  for _ in $(seq "${cores}"); do
    "${python}" -c 'while True: pass' &
    load_pids+=("$!")
  done
  log "${cores} busy loop(s) running; ${rounds} round(s) of tests/unit"
  for round in $(seq "${rounds}"); do
    started="${SECONDS}"
    log "round ${round}/${rounds}"
    "${python}" -m pytest tests/unit -q -p no:cacheprovider "$@"
    log "round ${round}/${rounds} passed in $((SECONDS - started)) s"
  done
  log "all ${rounds} round(s) passed under load"
}

main "$@"
