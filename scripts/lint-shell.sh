#!/usr/bin/env bash
# Runs shellcheck on every shell script of the repository, i.e. the files git tracks
# (or would: new, not ignored) that are named *.sh or whose first line is a sh or bash
# shebang (.ci/run, scripts/kind/files/iptables-mode), so that a new script is checked
# without being listed anywhere. `make lint` runs it.
#   scripts/lint-shell.sh [--list]   (--list: print the files, check nothing)
set -euo pipefail

SHEBANG_RE='^#![ \t]*[^ \t]*/(env[ \t]+)?(ba)?sh([ \t]|$)'

log() { printf '[lint-shell] %s\n' "$*" >&2; }

shell_scripts() { # the repository's shell scripts, one per line
  local tracked file files=()
  # (Called as $(shell_scripts), where errexit is off: failures are returned explicitly.)
  tracked="$(git -c core.quotePath=false ls-files --cached --others --exclude-standard)" || return
  while IFS= read -r file; do
    # Skips a file deleted in the work tree but not yet in the index.
    if [ -f "${file}" ]; then
      files+=("${file}")
    fi
  done <<<"${tracked}"
  [ "${#files[@]}" -gt 0 ] || return 0
  awk -v re="${SHEBANG_RE}" \
    'FNR == 1 { if (FILENAME ~ /\.sh$/ || $0 ~ re) print FILENAME; nextfile }' "${files[@]}"
}

main() {
  cd "$(dirname "$0")/.."
  local scripts=() list
  list="$(shell_scripts)"
  [ -n "${list}" ] || { log "ERROR: no shell scripts found"; exit 1; }
  mapfile -t scripts <<<"${list}"
  if [ "${1:-}" = --list ]; then
    printf '%s\n' "${scripts[@]}"
    return 0
  fi
  command -v shellcheck >/dev/null 2>&1 ||
    { log "ERROR: shellcheck not found: apt-get install shellcheck (make prereqs does)"; exit 1; }
  # -x: follow the `source`d lib.sh (paths in the directives are from the repo root).
  shellcheck -x "${scripts[@]}"
}

main "$@"
