#!/usr/bin/env bash
# Runs a long, chatty build step with its output in a log file instead of the terminal:
# prints what it does, then how long it took (and how long it took last time, from the
# cache), and on failure the end of the log and where the whole log is.
#   scripts/run-logged.sh LABEL -- COMMAND [ARG...]
# e.g. scripts/run-logged.sh "step 1/5: building kubectl" -- go build ...
# Logs and timings live under WQ_CACHE (default ~/.cache/wq), so a fresh clone on the same
# machine still knows how long a step took before.
set -euo pipefail

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

main() {
  if [ "$#" -lt 3 ] || [ "$2" != "--" ]; then
    log "usage: run-logged.sh LABEL -- COMMAND [ARG...]"
    exit 2
  fi
  local label="$1"
  shift 2
  local cache="${WQ_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/wq}"
  local slug logs timings logfile last="" started code=0
  slug="$(printf '%s' "${label}" | tr -c 'A-Za-z0-9._-' '_' | sed 's/^step_[0-9]*_[0-9]*__//')"
  logs="${cache}/logs"
  timings="${cache}/timings"
  mkdir -p "${logs}" "${timings}"
  logfile="${logs}/${slug}.log"
  if [ -f "${timings}/${slug}" ]; then
    last=" (last time $(cat "${timings}/${slug}")s)"
  fi
  log "${label}...${last}"
  started="${SECONDS}"
  "$@" >"${logfile}" 2>&1 || code=$?
  if [ "${code}" -ne 0 ]; then
    tail -n 40 "${logfile}" >&2
    log "${label}: FAILED (exit ${code}) after $((SECONDS - started))s; whole log: ${logfile}"
    exit "${code}"
  fi
  echo "$((SECONDS - started))" >"${timings}/${slug}"
  log "${label}: done in $((SECONDS - started))s"
}

main "$@"
