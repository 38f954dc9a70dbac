#!/usr/bin/env bash
# Installs streamstack's local toolchain, pinned, into ${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}/bin.
#
#   scripts/toolchain/install.sh            # everything (cluster tools + Pulumi)
#   scripts/toolchain/install.sh cluster    # etcd, kube-*, kubectl, kwok, registry only
#   scripts/toolchain/install.sh pulumi     # pulumi, pulumi-language-nodejs, provider plugins only
#
# Idempotent: a binary already on PATH (or in the cache) that reports the pinned version is used as it
# is; anything else is built once from its Go module through a small wrapper module and kept in the
# cache. Needs: Debian 12 (apt-get for curl/openssl), Go >= 1.24 on PATH or in /usr/local/go/bin.
set -euo pipefail

# ---- pinned versions (keep in step with package-lock.json / the reference cluster) -----------------
# The engine and plugins must match the SDKs the program runs with: read them from package-lock.json.
lock_version() { node -p "require('$(cd "$(dirname "$0")/../.." && pwd)/package-lock.json').packages['node_modules/$1'].version"; }
PULUMI_VERSION=$(lock_version @pulumi/pulumi)
PULUMI_K8S_VERSION=$(lock_version @pulumi/kubernetes)
PULUMI_DOCKER_VERSION=$(lock_version @pulumi/docker)
K8S_VERSION=1.32.4                # == /usr/bin/kubectl on the dev machines; reference runs 1.30
K8S_COMMIT=59526cd4867447956156ae3a602fcbac10a2c335   # tag v1.32.4 (module proxy .info Origin.Hash)
ETCD_VERSION=3.5.16               # the etcd kubernetes 1.32 is built and tested against
KWOK_VERSION=0.7.0
REGISTRY_VERSION=3.0.0            # github.com/distribution/distribution/v3 cmd/registry

CACHE="${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}"
BIN="$CACHE/bin"
SRC="$CACHE/src"                  # wrapper modules live here
PULUMI_HOME_DIR="$CACHE/pulumi"   # PULUMI_HOME: plugins installed here, never in ~/.pulumi
mkdir -p "$BIN" "$SRC" "$PULUMI_HOME_DIR"
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

WHAT="${1:-all}"
case "$WHAT" in all|cluster|pulumi) ;; *) echo "install.sh: unknown target '$WHAT' (allowed: all, cluster, pulumi)" >&2; exit 2;; esac

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
mod_dir()   { mod_field "$1" Dir; }

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
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
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

# ---- Pulumi -----------------------------------------------------------------------------------------
proxy_refuses() {  # proxy_refuses MODULE@VERSION: prints the refusal and returns 0 if the proxy says no
  if mod_gomod "$1" >/dev/null; then return 1; fi
  return 0
}

install_pulumi() {
  local want="v$PULUMI_VERSION" incomplete=0
  if has_version pulumi "$want" pulumi version && has_version pulumi-language-nodejs "$PULUMI_VERSION" pulumi-language-nodejs -version; then
    log "pulumi: $want present ($(command -v pulumi))"
  else
    log "pulumi $want: building github.com/pulumi/pulumi/pkg/v3/cmd/pulumi and pulumi-language-nodejs"
    if proxy_refuses "github.com/pulumi/pulumi/pkg/v3@$want" || \
       proxy_refuses "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@$want"; then
      log "  the Go module proxy refuses the Pulumi engine modules here; cannot build pulumi $want"; incomplete=1
    else
      PKGS="github.com/pulumi/pulumi/pkg/v3/cmd/pulumi" timed wrapper "$SRC/pulumi" "github.com/pulumi/pulumi/pkg/v3@$want" 1.24 "$want"
      PKGS="github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3" timed wrapper "$SRC/pulumi-language-nodejs" \
          "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@$want" 1.24 "$want"
      # sdk/go/common/version.Version is empty in module builds (upstream's Makefile sets it with -X):
      # `pulumi version` would report nothing and the engine's plugin version checks would misread it
      local pldf="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$want"
      (cd "$SRC/pulumi" && timed $NICE go build -ldflags "$pldf" -o "$BIN/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
      (cd "$SRC/pulumi-language-nodejs" && timed $NICE go build -ldflags "$pldf" -o "$BIN/pulumi-language-nodejs" \
          github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3)
    fi
  fi

  export PULUMI_HOME="$PULUMI_HOME_DIR" PULUMI_SKIP_UPDATE_CHECK=true
  local name ver mod pkg vvar spec
  for spec in "kubernetes $PULUMI_K8S_VERSION github.com/pulumi/pulumi-kubernetes/provider/v4 cmd/pulumi-resource-kubernetes pkg/version.Version" \
              "docker $PULUMI_DOCKER_VERSION - - -"; do
    set -- $spec; name=$1 ver=$2 mod=$3 pkg=$4 vvar=$5
    if [ -x "$PULUMI_HOME_DIR/plugins/resource-$name-v$ver/pulumi-resource-$name" ]; then
      log "plugin resource $name v$ver: present in $PULUMI_HOME_DIR/plugins"; continue
    fi
    local built=""
    if command -v "pulumi-resource-$name" >/dev/null; then
      built=$(command -v "pulumi-resource-$name")   # a provider binary put on PATH by hand: trusted to be v$ver
      log "plugin resource $name v$ver: using $built from PATH"
    elif [ "$mod" = - ]; then
      # pulumi-docker bridges a Terraform provider through `replace ... => ../upstream`, a git submodule
      # that no module zip contains (and the proxy refuses github.com/pulumi/pulumi-docker/* here):
      # it cannot be built from the Go module proxy at all
      log "  pulumi-resource-$name v$ver cannot be built from the Go module proxy; put the binary on PATH"; incomplete=1; continue
    else
      log "plugin resource $name v$ver: building $mod/$pkg"
      if proxy_refuses "$mod@v$ver"; then log "  cannot build pulumi-resource-$name v$ver"; incomplete=1; continue; fi
      PKGS="$mod/$pkg" timed wrapper "$SRC/pulumi-resource-$name" "$mod@v$ver" 1.24 "v$ver"
      local dir; dir=$(mod_dir "$mod@v$ver")
      # the provider //go:embed's schema-embed.json, which upstream's Makefile generates from the
      # committed schema.json; a plain module build fails with "pattern schema-embed.json: no matching files"
      if [ ! -f "$dir/$pkg/schema-embed.json" ]; then
        log "  go:embed file is generated upstream; building from a writable copy with schema-embed.json"
        rm -rf "$SRC/pulumi-resource-$name/mod"; cp -r "$dir" "$SRC/pulumi-resource-$name/mod"; chmod -R u+w "$SRC/pulumi-resource-$name/mod"
        cp "$dir/$pkg/schema.json" "$SRC/pulumi-resource-$name/mod/$pkg/schema-embed.json"
        (cd "$SRC/pulumi-resource-$name" && go mod edit -replace "$mod=./mod")
      fi
      (cd "$SRC/pulumi-resource-$name" && timed $NICE go build -ldflags "-s -w -X $mod/$vvar=$ver" \
          -o "$SRC/pulumi-resource-$name/pulumi-resource-$name" "$mod/$pkg")
      built="$SRC/pulumi-resource-$name/pulumi-resource-$name"
    fi
    command -v pulumi >/dev/null || { log "  no pulumi CLI to install the plugin with"; incomplete=1; continue; }
    # plugin install --file puts it where the engine looks (PULUMI_HOME/plugins): nothing is downloaded
    pulumi plugin install resource "$name" "$ver" --file "$built"
  done
  return $incomplete
}

# ---- main -------------------------------------------------------------------------------------------
log "cache: $CACHE (bin: $BIN)"
apt_install ca-certificates curl openssl procps
status=0
if [ "$WHAT" != pulumi ]; then
  need_go
  install_etcd
  install_k8s
  install_kwok
  install_registry
fi
if [ "$WHAT" != cluster ]; then
  need_go
  install_pulumi || { status=3; log "Pulumi toolchain INCOMPLETE (see above)"; }
fi
log "done in $(( $(date +%s) - T0 ))s; source scripts/toolchain/env.sh to use it"
exit $status
