#!/usr/bin/env bash
# Download the wheels the image needs into images/worker/wheelhouse/, on the host, so that
# `docker build` installs offline (build containers may not reach a package index).
# The Dockerfile installs from the wheelhouse alone whenever it holds wheels.
#   images/worker/build-wheelhouse.sh [PYTHON]   (default: python3; use the venv's for pinned pip)
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${1:-python3}"
rm -rf "$here/wheelhouse"
# The package's dependencies (from pyproject.toml) with its `sources` extra (fsspec's
# filesystems for http, s3 and gs URLs), setuptools for its build backend, and
# async-timeout, which redis needs on Python < 3.11.3 (Debian bookworm has 3.11.2) but the
# host's newer Python would leave out.
"$python" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
  --dest "$here/wheelhouse" "${here}[sources]" "setuptools>=68" "async-timeout>=4.0.3"
ls "$here/wheelhouse"
