#!/usr/bin/env bash
# Makes sure the pinned uv (tools/versions.env) is on PATH, installing it with pip if it is missing or another
# version. Prints nothing when it is already there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/versions.env
source "$root/tools/versions.env"
if [[ "$(uv --version 2>/dev/null)" != "uv $UV_VERSION"* ]]; then
  echo "[ensure-uv] installing uv $UV_VERSION with pip"
  python3 -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
