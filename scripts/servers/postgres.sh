#!/usr/bin/env bash
# Debian's PostgreSQL server for the kvs tests. tests/harness/postgres.ts runs its binaries as plain
# processes on loopback (initdb into a temp dir, a free port); Debian's own cluster and service are
# never started.
#   scripts/servers/postgres.sh install   install the postgresql package unless its binaries are there (idempotent)
#   scripts/servers/postgres.sh bin       print the bin directory the harness uses
# Env: STREAMSTACK_POSTGRES_BIN  a bin directory to use instead of the newest /usr/lib/postgresql/<ver>/bin
set -euo pipefail

say() { echo "postgres: $*" >&2; }
usage() { say "$*"; exit 2; }

cmd=${1:-help}
case "$cmd" in
  install|bin) [ $# -le 1 ] || usage "'$cmd' takes no arguments, got '$2'" ;;
  help|-h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) usage "unknown command '$cmd' (allowed: install, bin)" ;;
esac
if [ -n "${STREAMSTACK_POSTGRES_BIN:-}" ] && { [ ! -x "$STREAMSTACK_POSTGRES_BIN/postgres" ] || [ ! -x "$STREAMSTACK_POSTGRES_BIN/initdb" ]; }; then
  usage "STREAMSTACK_POSTGRES_BIN must be a directory holding postgres and initdb, got '$STREAMSTACK_POSTGRES_BIN'"
fi

# STREAMSTACK_POSTGRES_BIN, else the newest /usr/lib/postgresql/<ver>/bin holding postgres and initdb.
bin_dir() {
  if [ -n "${STREAMSTACK_POSTGRES_BIN:-}" ]; then echo "$STREAMSTACK_POSTGRES_BIN"; return; fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -V -r); do
    if [ -x "$d/postgres" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  done
}

install_postgres() {
  local dir
  dir=$(bin_dir)
  if [ -n "$dir" ]; then
    say "found $("$dir/postgres" --version) in $dir"
    return
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "PostgreSQL server binaries missing: install them (Debian: apt-get install postgresql)"; exit 1
  fi
  say "installing postgresql with apt-get"
  # policy-rc.d: the package's maintainer scripts must not start Debian's own cluster.
  local added=0 rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; added=1
  fi
  { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends postgresql; } >&2 || rc=$?
  [ $added = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ $rc = 0 ] || { say "apt-get failed ($rc)"; exit $rc; }
  dir=$(bin_dir)
  [ -n "$dir" ] || { say "postgresql installed, but no /usr/lib/postgresql/<ver>/bin/postgres found"; exit 1; }
  say "installed $("$dir/postgres" --version) in $dir"
}

case "$cmd" in
  install) install_postgres ;;
  bin)
    dir=$(bin_dir)
    [ -n "$dir" ] || { say "no PostgreSQL server binaries (scripts/servers/postgres.sh install)"; exit 1; }
    echo "$dir" ;;
esac
