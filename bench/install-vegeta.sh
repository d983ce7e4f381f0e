#!/usr/bin/env bash
# Builds the vegeta load generator (fixed arrival rate: an open-model load) from its Go module, at the version pinned
# in tools/versions.env, into the per-machine cache. Prints the binary's path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/versions.env
source "$root/tools/versions.env"
cache=${ORDER_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/order-platform}
bin_dir="$cache/vegeta-$VEGETA_VERSION"
if [[ ! -x "$bin_dir/vegeta" ]]; then
  echo "[install-vegeta] building vegeta $VEGETA_VERSION" >&2
  GOBIN="$bin_dir" CGO_ENABLED=0 go install -trimpath "github.com/tsenart/vegeta/v12@v$VEGETA_VERSION" >&2
fi
echo "$bin_dir/vegeta"
