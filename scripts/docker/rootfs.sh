# shellcheck shell=bash
# Shared by the scripts that build a Debian root filesystem with debootstrap and `docker import` it
# (scripts/docker/node-base.sh, tests/images/build.sh). Source it; it defines functions only.
#
#   rootfs_find_mirror SUITE        URI of the first enabled 'deb' source of this machine carrying SUITE
#   rootfs_mirrors SUITE            sets MIRROR and SECURITY_MIRROR for SUITE (falls back to the mirror of
#                                   this machine's own release: the same Debian archive serves every suite)
#   rootfs_ensure_debootstrap LOG   apt-get installs debootstrap if missing
#   rootfs_debootstrap ROOT SUITE MIRROR DEBCACHE LOG INCLUDE   minbase debootstrap, INCLUDE comma-separated
#   rootfs_configure ROOT SUITE MIRROR SECURITY_MIRROR          apt sources + slim dpkg/apt config
#   rootfs_umount ROOT              lazily unmounts proc, sys, dev/pts, dev under ROOT
#   rootfs_slim ROOT                drops apt lists, caches, docs, man pages, logs, machine-id
#   rootfs_import ROOT TAG MESSAGE [docker import -c CHANGE]...   tar ROOT | docker import
# Callers provide log() and die().

# Prints "URI" of the first enabled 'deb' source carrying suite $1 (deb822 *.sources, then sources.list).
rootfs_find_mirror() {
  local suite="$1" f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r "$f" ]] || continue
    awk -v want="$suite" '
      function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " want " ") && uri != "" && !done) { print uri; done=1 } types=""; suites=""; uri=""; enabled="" }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      tolower($1) == "types:"   { $1=""; types=$0 }
      tolower($1) == "suites:"  { $1=""; suites=$0 }
      tolower($1) == "uris:"    { uri=$2 }
      tolower($1) == "enabled:" { enabled=tolower($2) }
      END { flush() }' "$f"
  done | head -n1 | grep . && return 0
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r "$f" ]] || continue
    # deb [opts] URI suite components...
    sed -E 's/\[[^]]*\]//' "$f" | awk -v want="$suite" '$1=="deb" && $3==want { print $2; exit }'
  done | head -n1 | grep .
}

# Sets MIRROR / SECURITY_MIRROR for suite $1. A suite this machine's apt does not list (e.g. bullseye on
# a bookworm host) is served by the same archive as the host's own release, so that mirror is used.
rootfs_mirrors() {
  local suite="$1" own
  if MIRROR="$(rootfs_find_mirror "$suite")"; then
    SECURITY_MIRROR="$(rootfs_find_mirror "$suite-security" || true)"
    return 0
  fi
  own="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
  [[ -n "$own" ]] && MIRROR="$(rootfs_find_mirror "$own")" \
    || die "no enabled apt source for suite '$suite' (nor for this machine's release '${own:-?}') in /etc/apt/sources.list(.d)"
  SECURITY_MIRROR="$(rootfs_find_mirror "$own-security" || true)"
}

rootfs_ensure_debootstrap() {
  local aptlog="$1"
  command -v debootstrap >/dev/null 2>&1 && return 0
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >"$aptlog" 2>&1 \
    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap; } >>"$aptlog" 2>&1 \
    || die "apt-get install debootstrap failed (log: $aptlog)"
}

rootfs_debootstrap() {
  local root="$1" suite="$2" mirror="$3" debs="$4" dlog="$5" include="$6" t=$SECONDS
  mkdir -p "$root" "$debs"
  log "debootstrap $suite (minbase) from $mirror ..."
  debootstrap --variant=minbase --include="$include" --cache-dir="$debs" \
    "$suite" "$root" "$mirror" >"$dlog" 2>&1 \
    || { tail -30 "$dlog" >&2; die "debootstrap failed (log: $dlog)"; }
  log "debootstrap done in $((SECONDS - t))s"
}

# apt sources inside the image (the same mirrors this machine uses), and Debian-slim-like dpkg/apt config
rootfs_configure() {
  local root="$1" suite="$2" mirror="$3" security="$4"
  rm -f "$root/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" "$suite" "$suite"
    if [[ -n "$security" ]]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$security" "$suite"
    fi
  } >"$root/etc/apt/sources.list.d/debian.sources"

  # keep later apt-get installs in derived images small too (as Debian's slim images do)
  cat >"$root/etc/dpkg/dpkg.cfg.d/streamstack-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/docker-no-recommends"
}

rootfs_umount() {
  local root="$1" m
  for m in proc sys dev/pts dev; do mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m" || true; done
}

rootfs_slim() {
  local root="$1"
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/debconf/*-old \
         "$root"/var/lib/dpkg/*-old "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian \
         "$root"/root/.npm "$root"/tmp/* "$root"/var/tmp/*
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  find "$root/var/log" -type f -exec truncate -s 0 {} +
  local m
  for m in proc sys dev/pts dev; do mountpoint -q "$root/$m" && umount -l "$root/$m"; done
  rm -rf "${root:?}"/dev/* "${root:?}"/proc/* "${root:?}"/sys/* "${root:?}"/run/*
  : >"$root/etc/machine-id" 2>/dev/null || true
}

# rootfs_import ROOT TAG MESSAGE [CHANGE]...: each CHANGE is a Dockerfile instruction for `docker import -c`.
rootfs_import() {
  local root="$1" tag="$2" msg="$3" t=$SECONDS c
  shift 3
  local changes=()
  for c in "$@"; do changes+=(-c "$c"); done
  log "importing as $tag ($(du -sh "$root" | cut -f1) on disk)"
  tar -C "$root" --numeric-owner -c . | docker import "${changes[@]}" -m "$msg" - "$tag" >/dev/null
  log "import done in $((SECONDS - t))s"
}
