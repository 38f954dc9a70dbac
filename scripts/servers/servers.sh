#!/usr/bin/env bash
# Real Apache Cassandra, ZooKeeper and Kafka servers on loopback for the apps' tests and by-hand checks.
#   scripts/servers/servers.sh fetch|start|stop|status|env [cassandra|kafka|all] [--nodes N] [--brokers N]
#   scripts/servers/servers.sh stop-node|start-node cassandra|kafka I [--kill]
# The work is done by tests/harness/cli.ts (the same code the jest tests use); see README.md beside this file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

say() { echo "servers: $*" >&2; }

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "missing $*: install it (Debian: apt-get install $*)"; exit 1
  fi
  say "installing $* with apt-get"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }

ensure_tools() {
  # A JDK, not a JRE: Cassandra's JVM flags name jdk.compiler and jdk.attach, which a JRE lacks.
  if ! command -v java >/dev/null || [ "$(java_major)" -lt 17 ]; then apt_install openjdk-17-jdk-headless; fi
  # Cassandra 5.0 runs on Java 11 and 17 only; Kafka 3.9 on 8..23.
  if [ "$(java_major)" != 17 ] && [ "$(java_major)" != 11 ]; then
    say "warning: java $(java_major) found; Cassandra 5.0 supports Java 11 and 17 (set JAVA_HOME to a JDK 17)"
  fi
  command -v mvn >/dev/null || apt_install maven
  if ! command -v node >/dev/null; then say "node >= 20 is needed to run tests/harness (see the repo's README)"; exit 1; fi
  if [ ! -d "$repo/node_modules/typescript" ]; then
    say "installing the repo's node modules (npm ci) for the TypeScript harness"
    (cd "$repo" && npm ci --no-audit --no-fund >&2)
  fi
}

case "${1:-help}" in
  help|-h|--help) ;;
  *) ensure_tools ;;
esac
exec node "$repo/tests/harness/tsrun.js" "$repo/tests/harness/cli.ts" "$@"
