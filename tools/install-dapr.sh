#!/usr/bin/env bash
# Builds the official daprd from the github.com/dapr/dapr Go module and the dapr CLI from github.com/dapr/cli, at the
# versions pinned in tools/versions.env, then lays out a project-local Dapr home (.dapr/) the way `dapr init --slim`
# would. Placement and the scheduler are not built: nothing here uses actors, workflows or the Jobs API (README,
# "Security"). Built binaries are cached per version outside the work tree, so a
# second run (or another clone on the same machine) does not rebuild.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/versions.env
source "$root/tools/versions.env"

cache=${ORDER_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/order-platform}
build_dir="$cache/dapr-$DAPR_VERSION-$DAPR_BUILD_TAGS"
cli_dir="$cache/dapr-cli-$DAPR_CLI_VERSION"
dapr_home="$root/.dapr"

log() { printf '[install-dapr %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Downloads a module (through the Go module proxy) and prints the path of a writable copy of its source.
# `go install module@version` is no use here: dapr/dapr's go.mod has replace directives, which it refuses, and
# for dapr/cli it asks the proxy for the module's version list, which the proxy reachable here does not serve.
writable_module_copy() {
  local module=$1 version=$2 dir copy
  log "downloading $module@v$version"
  dir=$(cd "$cache" && GOFLAGS=-mod=mod go mod download -json "$module@v$version" \
    | python3 -c 'import json, sys; m = json.load(sys.stdin); print(m.get("Dir") or sys.exit(m.get("Error")))')
  copy="$cache/src/$(basename "$module")-$version"
  rm -rf "$copy" && mkdir -p "$(dirname "$copy")" && cp -r "$dir" "$copy" && chmod -R u+w "$copy"
  echo "$copy"
}

build_runtime() {
  if [[ -x "$build_dir/bin/daprd" ]]; then
    log "daprd $DAPR_VERSION already built in $build_dir"
    return
  fi
  local started=$SECONDS src
  src=$(writable_module_copy github.com/dapr/dapr "$DAPR_VERSION")
  local ldflags="-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$DAPR_VERSION"
  ldflags+=" -X github.com/dapr/dapr/pkg/buildinfo.gitversion=v$DAPR_VERSION"
  ldflags+=" -X github.com/dapr/kit/logger.DaprVersion=$DAPR_VERSION"
  mkdir -p "$build_dir/bin.partial"
  log "building daprd (tags: $DAPR_BUILD_TAGS); a first build takes about 5 minutes on 2 cores"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -tags "$DAPR_BUILD_TAGS" -ldflags "$ldflags" \
    -o "$build_dir/bin.partial/daprd" ./cmd/daprd)
  rm -rf "$build_dir/bin" && mv "$build_dir/bin.partial" "$build_dir/bin" && rm -rf "$src"
  log "dapr runtime built in $((SECONDS - started)) s"
}

build_cli() {
  if [[ -x "$cli_dir/dapr" ]]; then
    log "dapr CLI $DAPR_CLI_VERSION already built in $cli_dir"
    return
  fi
  local started=$SECONDS src
  log "building the dapr CLI $DAPR_CLI_VERSION"
  src=$(writable_module_copy github.com/dapr/cli "$DAPR_CLI_VERSION")
  mkdir -p "$cli_dir"
  # The CLI's pinned components-contrib (an indirect dependency through dapr/dapr) is not served by the module
  # proxy reachable here; a later patch release of the same line is (tools/versions.env says which).
  (cd "$src" && go mod edit -require="github.com/dapr/components-contrib@v$DAPR_CLI_COMPONENTS_CONTRIB_VERSION")
  (cd "$src" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X main.version=$DAPR_CLI_VERSION -X main.apiVersion=1.0" -o "$cli_dir/dapr.partial" .)
  mv "$cli_dir/dapr.partial" "$cli_dir/dapr" && rm -rf "$src"
  log "dapr CLI built in $((SECONDS - started)) s"
}

lay_out_home() {
  # The layout `dapr init --slim` creates under $HOME/.dapr, here under the project.
  mkdir -p "$dapr_home/bin" "$dapr_home/components"
  # The CLI starts <runtime-path>/.dapr/bin/daprd; the one it starts here is this wrapper, for two gaps of CLI
  # 1.16.5's run file. It sets the API's listen address (apiListenAddresses) but has no field for the internal
  # gRPC API's or the metrics server's, which daprd binds to all interfaces by default: the wrapper binds them to
  # 127.0.0.1. And it turns an empty schedulerHostAddress into "localhost:50006" (cmd/run.go,
  # validateSchedulerHostAddress, then pkg/standalone/run.go adds the port), so a daprd without a scheduler
  # reports unhealthy while it dials one: the wrapper drops `--scheduler-host-address localhost:50006` (to use a
  # scheduler, name it some other way, e.g. 127.0.0.1:50006).
  rm -f "$dapr_home/bin/daprd" "$dapr_home/bin/placement" "$dapr_home/bin/scheduler"
  cat > "$dapr_home/bin/daprd" <<WRAPPER
#!/bin/sh
# Written by tools/install-dapr.sh (see there): daprd $DAPR_VERSION with every listener on 127.0.0.1.
for argument do
  shift
  if [ "\$dropping" = 1 ] && [ "\$argument" = localhost:50006 ]; then dropping=; continue; fi
  if [ "\$dropping" = 1 ]; then set -- "\$@" --scheduler-host-address; fi
  dropping=
  if [ "\$argument" = --scheduler-host-address ]; then dropping=1; continue; fi
  set -- "\$@" "\$argument"
done
if [ "\$dropping" = 1 ]; then set -- "\$@" --scheduler-host-address; fi
exec "$build_dir/bin/daprd" --dapr-internal-grpc-listen-address 127.0.0.1 --metrics-listen-address 127.0.0.1 "\$@"
WRAPPER
  chmod +x "$dapr_home/bin/daprd"
  ln -sfn "$cli_dir/dapr" "$dapr_home/bin/dapr"
  # The CLI passes --config <runtime-path>/.dapr/config.yaml to every daprd it starts unless the run file names one.
  cp "$root/components/config.yaml" "$dapr_home/config.yaml"
}

mkdir -p "$cache"
build_runtime
build_cli
lay_out_home
log "dapr home ready: $dapr_home ($("$dapr_home/bin/daprd" --version))"
