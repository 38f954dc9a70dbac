#!/usr/bin/env bash
# Installs streamstack's local cluster toolchain, pinned, into ${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}/bin:
#
#   scripts/toolchain/install.sh [cluster]  # etcd, kube-* (kubelet, kube-proxy too), kubectl, kwok, registry, coredns
#
# The Pulumi CLI and its kubernetes/docker provider plugins are not built here: the Go module proxy
# refuses them (README.md beside this file). Install the CLI as Pulumi documents it
# (https://www.pulumi.com/docs/install/); it fetches the plugins itself. scripts/up.sh uses the `pulumi` on PATH.
#
# Idempotent: a binary already on PATH (or in the cache) that reports the pinned version is used as it
# is; anything else is built once from its Go module through a small wrapper module and kept in the
# cache. Needs: Debian 12 (apt-get for curl/openssl), Go >= 1.24 on PATH or in /usr/local/go/bin.
set -euo pipefail

# ---- pinned versions -------------------------------------------------------------------------------
K8S_VERSION=1.32.4                # == /usr/bin/kubectl on the dev machines; reference runs 1.30
K8S_COMMIT=59526cd4867447956156ae3a602fcbac10a2c335   # tag v1.32.4 (module proxy .info Origin.Hash)
ETCD_VERSION=3.5.16               # the etcd kubernetes 1.32 is built and tested against
KWOK_VERSION=0.7.0
REGISTRY_VERSION=3.0.0            # github.com/distribution/distribution/v3 cmd/registry
COREDNS_VERSION=1.12.0            # cluster DNS of the real node (scripts/toolchain/node.sh)

CACHE="${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}"
BIN="$CACHE/bin"
SRC="$CACHE/src"                  # wrapper modules live here
mkdir -p "$BIN" "$SRC"
export PATH="$BIN:$PATH:/usr/local/go/bin"
export CGO_ENABLED=0              # static binaries, as upstream releases them; no C toolchain needed
export GOFLAGS="${GOFLAGS:-} -trimpath"
# the checksum DB (as reached through the proxy here) answers 404 for k8s.io/kubernetes and several
# k8s.io/* staging and go.etcd.io modules, and go refuses a module it cannot verify: skip the lookup there
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}k8s.io,go.etcd.io"
NICE="nice -n 10"                 # 2-core machines are shared: keep builds polite

T0=$(date +%s)
log()  { printf '[toolchain %s +%4ss] %s\n' "$(date -u +%H:%M:%S)" "$(( $(date +%s) - T0 ))" "$*"; }
die()  { log "ERROR: $*"; exit 1; }
timed() { local s; s=$(date +%s); "$@"; log "  ... took $(( $(date +%s) - s ))s"; }

WHAT="${1:-cluster}"
case "$WHAT" in cluster) ;; *) echo "install.sh: unknown target '$WHAT' (allowed: cluster)" >&2; exit 2;; esac

# ---- prerequisites ---------------------------------------------------------------------------------
apt_install() {  # apt_install pkg...: installs only what is missing; one apt-get update per run (waits for the dpkg lock: other jobs may hold it)
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  [ -n "${APT_UPDATED:-}" ] || { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 update -qq; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

need_go() {
  command -v go >/dev/null || die "Go not found (need >= 1.24; /usr/local/go/bin/go on the dev machines)"
  local v; v=$(go env GOVERSION); v=${v#go}
  local major=${v%%.*} rest=${v#*.}; local minor=${rest%%.*}
  { [ "$major" -gt 1 ] || [ "$minor" -ge 24 ]; } || die "Go $v too old: kwok $KWOK_VERSION needs >= 1.24"
  log "using $(go version) (GOMODCACHE=$(go env GOMODCACHE), GOCACHE=$(go env GOCACHE))"
}

# has_version BIN WANT CMD...: true if BIN (on PATH) runs CMD and prints WANT somewhere
has_version() {
  local bin=$1 want=$2; shift 2
  command -v "$bin" >/dev/null 2>&1 || return 1
  "$@" 2>&1 | grep -qF -- "$want"
}

mod_field() {  # mod_field MODULE@VERSION FIELD: downloads the module, prints a field of `go mod download -json`
  local j err; j=$(cd "$SRC" && go mod download -json "$1" 2>&1 || true)
  err=$(printf '%s\n' "$j" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",*$/\1/p')
  [ -z "$err" ] || { log "  go mod download $1: $err" >&2; return 1; }
  printf '%s\n' "$j" | sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",*\$/\1/p"
}
mod_gomod() { mod_field "$1" GoMod; }

# copy_replaces GOMOD VERSION_FOR_LOCAL: prints the replace directives of an upstream go.mod, because
# `go install pkg@version` refuses modules with replace lines and a requiring module ignores its
# dependency's ones. Local ones (./staging/src/k8s.io/api, ../sdk, ../client/v2) become
# "<module> VERSION_FOR_LOCAL", or the required version when the module's major version differs
# (etcd's client/v2 is v2.305.x beside v3.5.x); local ones for modules not required at all are
# dropped (etcd's "=> ./FORBIDDEN_DEPENDENCY" guards).
copy_replaces() {
  local gomod=$1 localver=$2
  awk -v lv="$localver" '
    function major(v) { sub(/^v/, "", v); sub(/\..*/, "", v); return v + 0 }
    function pathmajor(m,   a, n) { n = split(m, a, "/"); return (a[n] ~ /^v[0-9]+$/) ? substr(a[n], 2) + 0 : 1 }
    function emit(line,   a, n, m, v) {
      n = split(line, a, /[ \t]*=>[ \t]*/); if (n != 2) return
      sub(/^[ \t]+/, "", a[1]); sub(/[ \t]+$/, "", a[2])
      if (a[2] ~ /^\.\.?\//) {
        split(a[1], m, /[ \t]+/)
        if (!(m[1] in req)) return
        v = lv; if (major(lv) > 1 && major(lv) != pathmajor(m[1])) v = req[m[1]]
        print "replace " m[1] " => " m[1] " " v
      } else print "replace " a[1] " => " a[2]
    }
    FNR == NR {   # first pass: required versions
      if ($0 ~ /^require[ \t]*\($/) { inreq = 1; next }
      if (inreq && $0 ~ /^\)/) { inreq = 0; next }
      if (inreq && NF >= 2) req[$1] = $2
      else if ($1 == "require" && NF >= 3 && $2 != "(") req[$2] = $3
      next
    }
    /^replace[ \t]*\($/ { inblk = 1; next }
    inblk && /^\)/ { inblk = 0; next }
    inblk { sub(/\/\/.*/, ""); if ($0 ~ /=>/) emit($0); next }
    /^replace[ \t]/ { sub(/^replace[ \t]+/, ""); sub(/\/\/.*/, ""); emit($0) }
  ' "$gomod" "$gomod"
}

# wrapper DIR MODULE@VERSION GOVERSION LOCALVER: writes DIR/go.mod requiring MODULE with the upstream
# replace lines copied (see copy_replaces) and resolves the packages in $PKGS (go get fills go.sum);
# redone only when that go.mod would change.
wrapper() {
  local dir=$1 modver=$2 gov=$3 extra=${4:-}
  local mod=${modver%@*} ver=${modver#*@}
  mkdir -p "$dir"
  local gomod; gomod=$(mod_gomod "$modver"); [ -n "$gomod" ] || die "cannot download $modver"
  {
    echo "// packages: $PKGS"   # a different set of mains (say kubectl too) needs go get again
    echo "module streamstack.local/toolchain/$(basename "$dir")"
    echo; echo "go $gov"; echo
    echo "require $mod $ver"
    copy_replaces "$gomod" "$extra"
  } >"$dir/go.mod.new"
  if ! cmp -s "$dir/go.mod.new" "$dir/go.mod.in" 2>/dev/null; then
    cp "$dir/go.mod.new" "$dir/go.mod"; rm -f "$dir/go.sum" "$dir/go.mod.in"
    # go get pkg@VERSION (not tidy: the wrapper has no .go files) records every module the mains
    # import; without @VERSION go get would silently move the main module to its latest release
    local p gets=(); for p in $PKGS; do gets+=("$p@$ver"); done
    (cd "$dir" && GOFLAGS=-mod=mod $NICE go get "${gets[@]}")
    grep -q "$mod $ver" "$dir/go.mod" || die "$dir/go.mod lost $mod $ver"
    cp "$dir/go.mod.new" "$dir/go.mod.in"   # only after success: a failed go get is redone next run
  fi
  rm -f "$dir/go.mod.new"
}

# ---- cluster tools ---------------------------------------------------------------------------------
install_etcd() {
  # Debian 12's etcd-server is 3.4.23: without the 3.4.31+/3.5.13+ progress-notify fix the apiserver
  # turns RequestWatchProgress off, and every client-go 0.32+ informer's watch-list fails and restarts
  # (kwok then reacts to pods 10-20s late); so etcd is built at the version kubernetes 1.32 pins
  if has_version etcd "etcd Version: $ETCD_VERSION" etcd --version; then
    log "etcd: v$ETCD_VERSION present ($(command -v etcd))"; return
  fi
  local mod=go.etcd.io/etcd/server/v3
  log "etcd v$ETCD_VERSION: building $mod (the etcd main package)"
  PKGS="$mod" timed wrapper "$SRC/etcd" "$mod@v$ETCD_VERSION" 1.22 "v$ETCD_VERSION"
  # no -X needed: etcd's version.Version is a constant, so `etcd --version` reports 3.5.16 as is
  (cd "$SRC/etcd" && timed $NICE go build -ldflags "-s -w" -o "$BIN/etcd" "$mod")
  log "  etcd: $("$BIN/etcd" --version | head -1)"
}

install_k8s() {
  local want="v$K8S_VERSION" b bins=() pkgs=()
  # kubelet and kube-proxy run the real node (node.sh): same module and version as the control plane
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    if has_version "$b" "$want" "$b" --version; then log "$b: $want present ($(command -v $b))"
    else bins+=("$b"); pkgs+=("k8s.io/kubernetes/cmd/$b"); fi
  done
  if has_version kubectl "$want" kubectl version --client; then
    log "kubectl: $want present ($(command -v kubectl))"
  else bins+=(kubectl); pkgs+=("k8s.io/kubernetes/cmd/kubectl"); fi
  [ ${#pkgs[@]} -eq 0 ] && return 0

  log "kubernetes $want: building ${bins[*]} from k8s.io/kubernetes@$want (one go build, shared compile)"
  PKGS="${pkgs[*]}" timed wrapper "$SRC/k8s" "k8s.io/kubernetes@$want" 1.23.0 "v0.${K8S_VERSION#1.}"
  # version.gitVersion etc. are placeholders in module builds (upstream sets them from git in
  # hack/lib/version.sh): --version would say v0.0.0-master+$Format:%H$, kubectl version skew checks misread it
  local v ldf=(-s -w) date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=(-X "$v.gitVersion=$want" -X "$v.gitMajor=${K8S_VERSION%%.*}" -X "$v.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
          -X "$v.gitCommit=$K8S_COMMIT" -X "$v.gitTreeState=clean" -X "$v.buildDate=$date")
  done
  (cd "$SRC/k8s" && timed $NICE go build -ldflags "${ldf[*]}" -o "$BIN/" "${pkgs[@]}")
  for b in "${bins[@]}"; do log "  $b: $("$BIN/$b" --version 2>/dev/null || "$BIN/$b" version --client | head -1)"; done
}

install_kwok() {
  if has_version kwok "v$KWOK_VERSION" kwok --version; then log "kwok: v$KWOK_VERSION present"; return; fi
  log "kwok v$KWOK_VERSION: building sigs.k8s.io/kwok/cmd/kwok"
  PKGS="sigs.k8s.io/kwok/cmd/kwok" timed wrapper "$SRC/kwok" "sigs.k8s.io/kwok@v$KWOK_VERSION" 1.24.0
  # consts.Version is a bare "0.7.0" in the source; upstream's release build (hack/releases.sh) sets "v0.7.0"
  (cd "$SRC/kwok" && timed $NICE go build -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v$KWOK_VERSION" \
      -o "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok)
  log "  kwok: $("$BIN/kwok" --version 2>&1 | head -1)"
}

install_registry() {
  if has_version registry "v$REGISTRY_VERSION" registry --version; then log "registry: v$REGISTRY_VERSION present"; return; fi
  local mod=github.com/distribution/distribution/v3
  log "registry v$REGISTRY_VERSION: building $mod/cmd/registry"
  PKGS="$mod/cmd/registry" timed wrapper "$SRC/registry" "$mod@v$REGISTRY_VERSION" 1.23.7
  # version.version is "v3.0.0+unknown" in the source; upstream's Makefile sets it with -X
  (cd "$SRC/registry" && timed $NICE go build \
      -ldflags "-s -w -X $mod/version.version=v$REGISTRY_VERSION -X $mod/version.mainpkg=$mod" \
      -o "$BIN/registry" "$mod/cmd/registry")
  log "  registry: $("$BIN/registry" --version 2>&1 | head -1)"
}

install_coredns() {
  if has_version coredns "CoreDNS-$COREDNS_VERSION" coredns -version; then log "coredns: v$COREDNS_VERSION present"; return; fi
  local mod=github.com/coredns/coredns
  log "coredns v$COREDNS_VERSION: building $mod"
  PKGS="$mod" timed wrapper "$SRC/coredns" "$mod@v$COREDNS_VERSION" 1.23.0
  (cd "$SRC/coredns" && timed $NICE go build -ldflags "-s -w" -o "$BIN/coredns" "$mod")
  log "  coredns: $("$BIN/coredns" -version 2>&1 | head -1)"
}

# ---- main -------------------------------------------------------------------------------------------
log "cache: $CACHE (bin: $BIN)"
apt_install ca-certificates curl openssl procps
need_go
install_etcd
install_k8s
install_kwok
install_registry
install_coredns
log "done in $(( $(date +%s) - T0 ))s; source scripts/toolchain/env.sh to use it"
