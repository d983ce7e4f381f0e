#!/usr/bin/env bash
# Installs the servers of the alternate state stores (components/alternates/): PostgreSQL and Redis, from Debian's
# packages at the major versions pinned in tools/versions.env. The default store (SQLite) needs neither; `make test`
# needs both, for the store conformance tests and the PostgreSQL stack.
# Idempotent: a server found already installed is left as it is. Installing needs root (apt-get). The stack starts
# its own servers (loopback, its own data); the packages' services stay down where there is no init system (Debian's
# invoke-rc.d then refuses to start them) and are not needed where there is one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/versions.env
source "$root/tools/versions.env"

log() { printf '[install-state-stores %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

missing=()
if [[ -x "/usr/lib/postgresql/$POSTGRES_MAJOR/bin/postgres" ]]; then
  log "PostgreSQL $POSTGRES_MAJOR found: $("/usr/lib/postgresql/$POSTGRES_MAJOR/bin/postgres" --version)"
else
  missing+=("postgresql-$POSTGRES_MAJOR")
fi
if command -v redis-server >/dev/null && [[ $(redis-server --version) == *"v=$REDIS_MAJOR."* ]]; then
  log "Redis $REDIS_MAJOR found: $(redis-server --version | cut -d' ' -f1-3)"
else
  missing+=(redis-server)
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  log "error: missing ${missing[*]}; install as root: apt-get install --no-install-recommends ${missing[*]}"
  exit 1
fi
started=$SECONDS
log "installing ${missing[*]} (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends -o "Dpkg::Options::=--force-confold" "${missing[@]}" \
  > /dev/null 2>&1; then
  log "package lists stale or missing: apt-get update, then again"
  apt-get update -q > /dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" > /dev/null
fi
log "installed ${missing[*]} in $((SECONDS - started)) s"
