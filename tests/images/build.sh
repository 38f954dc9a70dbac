#!/usr/bin/env bash
# Build the test-double ("stand-in") images for cassandra:4.1.3, confluentinc/cp-zookeeper:7.3.5,
# confluentinc/cp-kafka:7.3.5 and postgres:15, from package registries only (Debian, Maven Central, PyPI):
# no image registry is needed. See tests/images/README.md for what each one keeps of the official image.
#
# Usage: tests/images/build.sh [--push] [--force] [IMAGE...]
#   IMAGE     cassandra, cp-zookeeper, cp-kafka, postgres (default: all four)
#   --push    also push the images to $STREAMSTACK_REGISTRY (without it they are only tagged locally)
#   --force   rebuild even when the inputs are unchanged
# stdout: one line per image, `name=ref` (e.g. cassandra=127.0.0.1:5001/streamstack-test/cassandra:4.1.3);
# stderr: progress, with timings.
#
# Layers (each skipped when an image with the same inputs-hash label exists):
#   java11-base   debootstrap bullseye minbase + openjdk-11-jre-headless, python3 (+jinja2), bash, procps,
#                 iproute2, gosu, libjemalloc2 -> `docker import` (local only: streamstack-test/java11-base)
#   cp-base-new   FROM java11-base: appuser, /etc/confluent/docker (dub, cub, bash-config) and the Kafka
#                 3.3.2 distribution (CP 7.3.5's confluent-kafka) (local only)
#   postgres-base debootstrap bookworm minbase + bash, gosu, locales, procps, libnss-wrapper, xz-utils, zstd;
#                 then, in a chroot, the user postgres (uid/gid 999) before postgresql-common and
#                 postgresql-15 (no main cluster) from the Debian mirror -> `docker import` (local only)
#   cassandra, cp-zookeeper, cp-kafka, postgres: the four stand-ins, tagged $STREAMSTACK_REGISTRY/streamstack-test/...
#
# Environment knobs (checked before anything is built):
#   STREAMSTACK_REGISTRY   host:port the refs are tagged for and --push pushes to (default 127.0.0.1:5001)
#   STREAMSTACK_CACHE      cache root (default $HOME/.cache/streamstack); work files in standins/
#   STANDINS_BUILD_NETWORK network of `docker build` RUN steps: default or host (default: default)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
ALL_IMAGES=(cassandra cp-zookeeper cp-kafka postgres)

bad() { printf 'build.sh: %s\n' "$*" >&2; exit 2; }
REGISTRY="${STREAMSTACK_REGISTRY:-127.0.0.1:5001}"
CACHE="${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}"
BUILD_NETWORK="${STANDINS_BUILD_NETWORK:-default}"
[[ "$REGISTRY" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$ ]] \
  || bad "STREAMSTACK_REGISTRY must be a registry host[:port] like 127.0.0.1:5001, got '$REGISTRY'"
[[ "$CACHE" == /* ]] || bad "STREAMSTACK_CACHE must be an absolute path, got '$CACHE'"
case "$BUILD_NETWORK" in default|host) ;; *) bad "STANDINS_BUILD_NETWORK must be one of default, host, got '$BUILD_NETWORK'" ;; esac

PUSH=0 FORCE=0 WANT=()
for arg in "$@"; do
  case "$arg" in
    --push) PUSH=1 ;;
    --force) FORCE=1 ;;
    cassandra|cp-zookeeper|cp-kafka|postgres) WANT+=("$arg") ;;
    -*) bad "unknown flag '$arg' (allowed: --push, --force)" ;;
    *) bad "unknown image '$arg' (allowed: cassandra, cp-zookeeper, cp-kafka, postgres)" ;;
  esac
done
((${#WANT[@]})) || WANT=("${ALL_IMAGES[@]}")

# Versions: pinned here only.
JAVA_SUITE=bullseye                 # Debian 11: openjdk-11 (Cassandra 4.1 does not run on Java 17)
CASSANDRA_VERSION=4.1.3
CP_VERSION=7.3.5                    # Confluent Platform 7.3.5 ships Apache Kafka 7.3.5-ccs = 3.3.x
KAFKA_VERSION=3.3.2
SCALA_VERSION=2.13
CQLSH_VERSION=6.1.2                 # PyPI cqlsh: 6.1.x is the cqlsh of Cassandra 4.1
PY_TAG=39                           # the base image's python3 (bullseye: 3.9)
BASE_PACKAGES=ca-certificates,openjdk-11-jre-headless,python3,python3-jinja2,procps,iproute2,gosu,libjemalloc2,bash
PG_SUITE=bookworm                   # Debian 12: PostgreSQL 15.x, as the official postgres:15 line
PG_MAJOR=15
PG_TAG=15                           # postgres:15 (the minor is Debian's current 15.x: label ...standin.versions)
PG_BASE_PACKAGES=bash,gosu,locales,procps,libnss-wrapper,xz-utils,zstd

NS="streamstack-test"
BASE_TAG="$NS/java11-base:$JAVA_SUITE"
CPBASE_TAG="$NS/cp-base-new:$CP_VERSION"
PG_BASE_TAG="$NS/postgres-base:$PG_SUITE"
ref_of() {
  case "$1" in
    cassandra) echo "$REGISTRY/$NS/cassandra:$CASSANDRA_VERSION" ;;
    cp-zookeeper) echo "$REGISTRY/$NS/cp-zookeeper:$CP_VERSION" ;;
    cp-kafka) echo "$REGISTRY/$NS/cp-kafka:$CP_VERSION" ;;
    postgres) echo "$REGISTRY/$NS/postgres:$PG_TAG" ;;
  esac
}
LABEL_KEY=org.streamstack.standin.inputs
WORK="$CACHE/standins"

T0=$SECONDS
log() { printf '[standins %3ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { printf '[standins] ERROR: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" == 0 ]] || die "must run as root (debootstrap, chroot, docker)"
mkdir -p "$WORK"
exec 9>"$WORK/lock"
flock 9

# --- tools this script needs, installed on a fresh Debian 12 ---------------------------------------
apt_install() {
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >>"$WORK/apt.log" 2>&1 \
    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; } >>"$WORK/apt.log" 2>&1 \
    || die "apt-get install $* failed (log: $WORK/apt.log)"
}
want() { local w; for w in "${WANT[@]}"; do [[ "$w" == "$1" ]] && return 0; done; return 1; }
want_java() { want cassandra || want cp-zookeeper || want cp-kafka; }
ensure_tools() {
  local need=()
  if want_java; then  # Maven Central jars and PyPI wheels are resolved on the host
    command -v mvn >/dev/null 2>&1 || need+=(maven)
    command -v java >/dev/null 2>&1 || need+=(default-jdk-headless)
    command -v python3 >/dev/null 2>&1 || need+=(python3)
    python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
  fi
  ((${#need[@]} == 0)) || apt_install "${need[@]}"
  "$REPO/scripts/docker/engine.sh" status >/dev/null 2>&1 || "$REPO/scripts/docker/engine.sh" start >&2
}

# Debian's docker.io CLI (20.10) builds with the engine's built-in BuildKit; a newer CLI without the
# buildx plugin refuses DOCKER_BUILDKIT=1 (scripts/docker/README.md).
DOCKER_BIN="$(command -v /usr/bin/docker || command -v docker || true)"
docker() { "$DOCKER_BIN" "$@"; }

# Prints the image's inputs label, or nothing.
label_of() { docker image inspect -f "{{ index .Config.Labels \"$LABEL_KEY\" }}" "$1" 2>/dev/null || true; }
# Hash of files/dirs (paths relative to their content, so the checkout location does not matter) + strings.
hash_inputs() {
  local p
  {
    for p in "$@"; do
      if [[ -d "$p" ]]; then (cd "$p" && find . -type f -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum)
      elif [[ -f "$p" ]]; then sha256sum <"$p"
      elif [[ "$p" == /*:* && -d "${p%%:*}" ]]; then printf '%s\n' "${p#*:}"; ls -l "${p%%:*}" | awk '{print $5, $NF}'
      else printf '%s\n' "$p"; fi
    done
  } | sha256sum | cut -c1-16
}

# --- java11-base: debootstrap bullseye + Java 11 ---------------------------------------------------
build_java_base() {
  # shellcheck source=scripts/docker/rootfs.sh
  . "$REPO/scripts/docker/rootfs.sh"
  rootfs_mirrors "$JAVA_SUITE"
  local inputs have
  inputs="$(hash_inputs "$REPO/scripts/docker/rootfs.sh" "base $JAVA_SUITE $MIRROR $SECURITY_MIRROR $BASE_PACKAGES")"
  have="$(label_of "$BASE_TAG")"
  if [[ "$FORCE" != 1 && "$have" == "$inputs" ]]; then log "$BASE_TAG is up to date"; return 0; fi
  local t=$SECONDS dir="$WORK/java11-base" root
  root="$dir/rootfs"
  mkdir -p "$dir"
  rootfs_ensure_debootstrap "$WORK/apt.log"
  trap 'rootfs_umount "'"$root"'"; rm -rf "'"$root"'"' EXIT
  rootfs_umount "$root"; rm -rf "$root"
  log "Debian mirror: $MIRROR (security: ${SECURITY_MIRROR:-none})"
  rootfs_debootstrap "$root" "$JAVA_SUITE" "$MIRROR" "$dir/debs" "$dir/debootstrap.log" "$BASE_PACKAGES"
  rootfs_configure "$root" "$JAVA_SUITE" "$MIRROR" "$SECURITY_MIRROR"
  rootfs_slim "$root"
  rootfs_import "$root" "$BASE_TAG" "streamstack-test java11-base: debootstrap $JAVA_SUITE minbase + openjdk 11" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'ENV LANG=C.UTF-8' \
    'ENV JAVA_HOME=/usr/lib/jvm/java-11-openjdk-amd64' \
    "LABEL $LABEL_KEY=$inputs" \
    "LABEL org.streamstack.standin.versions=debian-$JAVA_SUITE,openjdk-11" \
    'CMD ["bash"]'
  rm -rf "$root"; trap - EXIT
  local version
  version="$(docker run --rm "$BASE_TAG" java -version 2>&1 || true)"
  [[ "$version" == *' version "11.'* ]] || die "java in $BASE_TAG is not Java 11: $version"
  log "built $BASE_TAG in $((SECONDS - t))s"
}

# --- postgres-base: debootstrap bookworm + Debian's PostgreSQL 15 ------------------------------------
# Upstream (docker-library/postgres 15/bookworm) creates the user postgres with uid/gid 999 before it
# installs any package, so postgresql-common's postinst finds it instead of adding a system user with
# some other uid; then it installs postgresql-common, switches off the main cluster in
# createcluster.conf, and installs postgresql-15. The same here, in a chroot, from this machine's mirror
# (with the security suite, so the current 15.x). Debs are kept in $WORK/postgres-base/debs.
pg_chroot_install() {
  local root="$1" debs="$2" alog="$3" cached="$1/var/cache/streamstack-debs"
  chroot "$root" groupadd -r postgres --gid=999
  chroot "$root" useradd -r -g postgres --uid=999 --home-dir=/var/lib/postgresql --shell=/bin/bash postgres
  install -d -o 999 -g 999 -m 1777 "$root/var/lib/postgresql"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod 0755 "$root/usr/sbin/policy-rc.d"
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  mkdir -p "$cached/partial"
  find "$debs" -maxdepth 1 -name '*.deb' -exec cp -l -t "$cached" {} + 2>/dev/null || true
  local apt=(chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o APT::Sandbox::User=root -o Acquire::Languages=none
    -o Dir::Cache::Archives=/var/cache/streamstack-debs/ --no-install-recommends)
  { "${apt[@]}" update && "${apt[@]}" install postgresql-common \
      && sed -ri 's/#(create_main_cluster) .*$/\1 = false/' "$root/etc/postgresql-common/createcluster.conf" \
      && grep -qx 'create_main_cluster = false' "$root/etc/postgresql-common/createcluster.conf" \
      && "${apt[@]}" install "postgresql-$PG_MAJOR"; } >"$alog" 2>&1 \
    || { tail -30 "$alog" >&2; die "apt-get install postgresql-$PG_MAJOR in the chroot failed (log: $alog)"; }
  find "$cached" -maxdepth 1 -name '*.deb' -exec cp -ln -t "$debs" {} + 2>/dev/null || true
  rm -rf "$cached" "$root/usr/sbin/policy-rc.d"
  [[ ! -e "$root/var/lib/postgresql/$PG_MAJOR" ]] || die "postgresql-$PG_MAJOR created a cluster in the chroot"
}
build_pg_base() {
  # shellcheck source=scripts/docker/rootfs.sh
  . "$REPO/scripts/docker/rootfs.sh"
  rootfs_mirrors "$PG_SUITE"
  local inputs have
  inputs="$(hash_inputs "$REPO/scripts/docker/rootfs.sh" \
    "pg-base $PG_SUITE $MIRROR $SECURITY_MIRROR $PG_BASE_PACKAGES postgresql-$PG_MAJOR" "$(declare -f pg_chroot_install build_pg_base)")"
  have="$(label_of "$PG_BASE_TAG")"
  if [[ "$FORCE" != 1 && "$have" == "$inputs" ]]; then log "$PG_BASE_TAG is up to date"; return 0; fi
  local t=$SECONDS dir="$WORK/postgres-base" root version
  root="$dir/rootfs"
  mkdir -p "$dir"
  rootfs_ensure_debootstrap "$WORK/apt.log"
  trap 'rootfs_umount "'"$root"'"; rm -rf "'"$root"'"' EXIT
  rootfs_umount "$root"; rm -rf "$root"
  log "Debian mirror: $MIRROR (security: ${SECURITY_MIRROR:-none})"
  rootfs_debootstrap "$root" "$PG_SUITE" "$MIRROR" "$dir/debs" "$dir/debootstrap.log" "$PG_BASE_PACKAGES"
  rootfs_configure "$root" "$PG_SUITE" "$MIRROR" "$SECURITY_MIRROR"
  local ti=$SECONDS
  log "installing postgresql-$PG_MAJOR in the chroot (user postgres 999:999 first) ..."
  pg_chroot_install "$root" "$dir/debs" "$dir/apt-chroot.log"
  version="$(chroot "$root" dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR")"
  log "postgresql-$PG_MAJOR $version installed in $((SECONDS - ti))s"
  rootfs_slim "$root"
  rootfs_import "$root" "$PG_BASE_TAG" "streamstack-test postgres-base: debootstrap $PG_SUITE minbase + postgresql-$PG_MAJOR $version" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "ENV PG_VERSION=$version" \
    "LABEL $LABEL_KEY=$inputs" \
    "LABEL org.streamstack.standin.versions=debian-$PG_SUITE,postgresql-$version" \
    'CMD ["bash"]'
  rm -rf "$root"; trap - EXIT
  local got
  got="$(docker run --rm "$PG_BASE_TAG" "/usr/lib/postgresql/$PG_MAJOR/bin/postgres" --version 2>&1 || true)"
  [[ "$got" == "postgres (PostgreSQL) $PG_MAJOR."* ]] || die "postgres in $PG_BASE_TAG is not PostgreSQL $PG_MAJOR: $got"
  log "built $PG_BASE_TAG ($got) in $((SECONDS - t))s"
}

# --- jars from Maven Central, resolved on the host -----------------------------------------------
# resolve_jars NAME G:A:V...  -> $WORK/mvn/NAME/lib/*.jar (runtime closure), skipped when done for the same list
resolve_jars() {
  local name="$1"; shift
  local dir="$WORK/mvn/$name" deps="" gav g a v stamp
  stamp="$*"
  if [[ -f "$dir/lib/.resolved" && "$(cat "$dir/lib/.resolved")" == "$stamp" ]]; then return 0; fi
  for gav in "$@"; do
    IFS=: read -r g a v <<<"$gav"
    deps+="<dependency><groupId>$g</groupId><artifactId>$a</artifactId><version>$v</version></dependency>"
  done
  mkdir -p "$dir"; rm -rf "$dir/lib"
  cat >"$dir/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>streamstack</groupId><artifactId>$name-standin</artifactId><version>1</version><packaging>pom</packaging>
<dependencies>$deps</dependencies></project>
EOF
  local t=$SECONDS
  log "resolving $* from Maven Central"
  (cd "$dir" && nice mvn -B -q dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime) >"$dir/mvn.log" 2>&1 \
    || { tail -20 "$dir/mvn.log" >&2; die "mvn dependency:copy-dependencies failed for $name (log: $dir/mvn.log)"; }
  printf '%s' "$stamp" >"$dir/lib/.resolved"
  log "resolved $(ls "$dir/lib" | grep -c '\.jar$') jars for $name in $((SECONDS - t))s"
}

# cqlsh and its pure-python deps as wheels for the image's python 3.9 (the RUN step needs no network)
resolve_cqlsh() {
  local dir="$WORK/pip/cqlsh-$CQLSH_VERSION"
  [[ -f "$dir/.resolved" ]] && return 0
  local t=$SECONDS
  rm -rf "$dir"; mkdir -p "$dir"
  log "downloading cqlsh==$CQLSH_VERSION wheels for python 3.9 from PyPI"
  nice python3 -m pip download -q --only-binary=:all: --python-version "$PY_TAG" --implementation cp \
    --platform manylinux2014_x86_64 --platform any -d "$dir" "cqlsh==$CQLSH_VERSION" >"$WORK/pip.log" 2>&1 \
    || { tail -20 "$WORK/pip.log" >&2; die "pip download cqlsh failed (log: $WORK/pip.log)"; }
  touch "$dir/.resolved"
  log "cqlsh wheels: $(cd "$dir" && ls ./*.whl | xargs -n1 basename | tr '\n' ' ')($((SECONDS - t))s)"
}

# --- docker build of a stand-in --------------------------------------------------------------------
# build_image TAG SRC_DIR [EXTRA_DIR:DEST]...   context = SRC_DIR + extra dirs linked in under DEST
build_image() {
  local tag="$1" src="$2"; shift 2
  local ctx="$WORK/ctx/$(basename "$src")" extra inputs have from
  from="$(sed -n 's/^ARG BASE=//p' "$src/Dockerfile" | head -n1)"
  inputs="$(hash_inputs "$src" "$HERE/build.sh" "$(docker image inspect -f '{{.Id}}' "${from:-none}" 2>/dev/null || echo none)" "$@")"
  have="$(label_of "$tag")"
  if [[ "$FORCE" != 1 && "$have" == "$inputs" ]]; then log "$tag is up to date"; return 0; fi
  local t=$SECONDS
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp -a "$src/." "$ctx/"
  find "$ctx" -name __pycache__ -prune -exec rm -rf {} +
  for extra in "$@"; do
    mkdir -p "$ctx/${extra#*:}"
    cp -al "${extra%%:*}/." "$ctx/${extra#*:}/" 2>/dev/null || cp -a "${extra%%:*}/." "$ctx/${extra#*:}/"
  done
  log "docker build $tag ..."
  DOCKER_BUILDKIT=1 nice "$DOCKER_BIN" build -q --network "$BUILD_NETWORK" --label "$LABEL_KEY=$inputs" -t "$tag" "$ctx" \
    >"$WORK/build-$(basename "$src").log" 2>&1 \
    || { tail -30 "$WORK/build-$(basename "$src").log" >&2; die "docker build $tag failed (log: $WORK/build-$(basename "$src").log)"; }
  rm -rf "$ctx"
  log "built $tag in $((SECONDS - t))s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# --- main --------------------------------------------------------------------------------------------
ensure_tools
log "building ${WANT[*]} for $REGISTRY (push: $PUSH)"
want_java && build_java_base

if want cp-zookeeper || want cp-kafka; then
  resolve_jars kafka "org.apache.kafka:kafka_$SCALA_VERSION:$KAFKA_VERSION" "org.apache.kafka:kafka-tools:$KAFKA_VERSION" \
    "org.slf4j:slf4j-reload4j:1.7.36"
  build_image "$CPBASE_TAG" "$HERE/cp-base-new" "$WORK/mvn/kafka/lib:jars"
  want cp-zookeeper && build_image "$(ref_of cp-zookeeper)" "$HERE/cp-zookeeper"
  want cp-kafka && build_image "$(ref_of cp-kafka)" "$HERE/cp-kafka"
fi
if want cassandra; then
  resolve_jars cassandra "org.apache.cassandra:cassandra-all:$CASSANDRA_VERSION"
  resolve_cqlsh
  build_image "$(ref_of cassandra)" "$HERE/cassandra" "$WORK/mvn/cassandra/lib:jars" "$WORK/pip/cqlsh-$CQLSH_VERSION:wheels"
fi
if want postgres; then
  build_pg_base
  build_image "$(ref_of postgres)" "$HERE/postgres"
fi

if [[ "$PUSH" == 1 ]]; then
  for name in "${WANT[@]}"; do
    t=$SECONDS
    docker push -q "$(ref_of "$name")" >"$WORK/push.log" 2>&1 \
      || { cat "$WORK/push.log" >&2; die "docker push $(ref_of "$name") failed: is a registry listening on $REGISTRY?"; }
    log "pushed $(ref_of "$name") in $((SECONDS - t))s"
  done
fi

for name in "${WANT[@]}"; do echo "$name=$(ref_of "$name")"; done
log "done in $((SECONDS - T0))s"
