#!/usr/bin/env bash
# Collects the jars of Apache Kafka (broker + controller in KRaft mode, StorageTool, admin tools) at the version
# pinned in tools/versions.env, from the Maven repository `mvn` is configured for, into a per-version cache outside
# the work tree. No Kafka tarball is downloaded: tools/kafka/pom.xml lists kafka_2.13, kafka-tools and the log4j2
# binding the official distribution ships, and the broker runs as `java -cp '<libs>/*' kafka.Kafka ...`.
# Idempotent: a second run (or another clone on the same machine) finds the jars and does nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/versions.env
source "$root/tools/versions.env"

cache=${ORDER_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/order-platform}
kafka_dir="$cache/kafka-$KAFKA_VERSION"
libs="$kafka_dir/libs"
marker=".complete" # written last, inside the directory that is then moved into place

log() { printf '[install-kafka %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [[ -f "$libs/$marker" ]]; then
  log "kafka $KAFKA_VERSION already installed in $libs"
  exit 0
fi

for tool in mvn java; do
  command -v "$tool" >/dev/null || { log "error: '$tool' not found on PATH (Kafka $KAFKA_VERSION needs Java 17+)"; exit 1; }
done

started=$SECONDS
mkdir -p "$kafka_dir"
partial=$(mktemp -d "$kafka_dir/libs.partial.XXXXXX")
chmod 755 "$partial"
trap 'rm -rf "$partial"' EXIT

log "resolving kafka_2.13 and kafka-tools $KAFKA_VERSION with maven (a cold ~/.m2 downloads about 80 MB)"
# -q leaves only errors, but Debian's mvn still prints bare colour resets: show the output only when it fails.
if ! mvn_out=$(mvn -q -B -f "$root/tools/kafka/pom.xml" dependency:copy-dependencies \
  -DoutputDirectory="$partial" -Dkafka.version="$KAFKA_VERSION" 2>&1); then
  printf '%s\n' "$mvn_out" >&2
  log "error: maven could not resolve Kafka $KAFKA_VERSION"
  exit 1
fi

for jar in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar"; do
  [[ -f "$partial/$jar" ]] || { log "error: $jar missing from the resolved dependencies"; exit 1; }
done
touch "$partial/$marker"

# A directory without the marker is a leftover of an interrupted older layout: replace it.
rm -rf "$libs"
mv -T "$partial" "$libs"
trap - EXIT

log "kafka $KAFKA_VERSION installed in $libs ($(find "$libs" -name '*.jar' | wc -l) jars, $(du -sh "$libs" | cut -f1)) in $((SECONDS - started)) s"
