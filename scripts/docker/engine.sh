#!/usr/bin/env bash
# Local Docker engine for streamstack image builds, without systemd.
#
#   scripts/docker/engine.sh start    install docker.io if needed, start dockerd, wait for `docker info`
#   scripts/docker/engine.sh stop     stop the dockerd this script started (and its containerd), wait until gone
#   scripts/docker/engine.sh status   exit 0 and print a summary if the engine answers, exit 1 if not
#
# Everything the engine writes lives under ${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}/docker/
# (daemon.json, dockerd.log, dockerd.pid, data/). The API socket is the default one,
# unix:///var/run/docker.sock, so the docker CLI and the Pulumi docker provider need no DOCKER_HOST.
#
# Environment knobs (all optional):
#   STREAMSTACK_CACHE            cache root (default $HOME/.cache/streamstack)
#   STREAMSTACK_DOCKER_STORAGE   force a storage driver (overlay2 | fuse-overlayfs | vfs); default: detected
#   STREAMSTACK_DOCKER_MTU       MTU for docker0 / build containers; default: MTU of the default-route interface
#   STREAMSTACK_REGISTRY         extra insecure registry host:port (127.0.0.1:5001 and localhost:5001 are always added)
#   STREAMSTACK_DOCKER_WAIT      seconds to wait for the engine to answer (default 60)
set -euo pipefail

CACHE="${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}"
DIR="$CACHE/docker"
DATA="$DIR/data"
CONF="$DIR/daemon.json"
LOG="$DIR/dockerd.log"
PIDFILE="$DIR/dockerd.pid"
SOCK=/var/run/docker.sock
HOST="unix://$SOCK"
WAIT="${STREAMSTACK_DOCKER_WAIT:-60}"

# Knobs are checked before anything is installed or started.
bad() { echo "engine.sh: $*" >&2; exit 2; }
[[ "$WAIT" =~ ^[1-9][0-9]*$ ]] || bad "STREAMSTACK_DOCKER_WAIT must be a whole number of seconds, got '$WAIT'"
case "${STREAMSTACK_DOCKER_STORAGE:-}" in ""|overlay2|fuse-overlayfs|vfs) ;;
  *) bad "STREAMSTACK_DOCKER_STORAGE must be one of overlay2, fuse-overlayfs, vfs (or unset: detected), got '$STREAMSTACK_DOCKER_STORAGE'" ;; esac
[[ -z "${STREAMSTACK_DOCKER_MTU:-}" || "$STREAMSTACK_DOCKER_MTU" =~ ^[0-9]{3,5}$ ]] || bad "STREAMSTACK_DOCKER_MTU must be a number of bytes like 1500, got '$STREAMSTACK_DOCKER_MTU'"

log() { printf '[engine] %s\n' "$*" >&2; }
die() { printf '[engine] ERROR: %s\n' "$*" >&2; exit 1; }

# The docker CLI: whichever is first on PATH (this machine has a v28 client in
# /usr/local/bin; docker.io brings a 20.10 one in /usr/bin). Both talk to the 20.10 daemon.
dcli() { docker -H "$HOST" "$@"; }

answers() { dcli info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

our_pid() {
  [[ -s "$PIDFILE" ]] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  [[ -d "/proc/$pid" ]] || return 1
  # make sure the pid is really our dockerd (pid reuse)
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--config-file $CONF" || return 1
  echo "$pid"
}

install_engine() {
  if command -v dockerd >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 \
     && command -v iptables >/dev/null 2>&1 && command -v containerd >/dev/null 2>&1; then
    return 0
  fi
  [[ "$(id -u)" == 0 ]] || die "need root to apt-get install docker.io"
  log "installing Debian's docker.io (+ containerd, runc, iptables) ..."
  local t0=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  # Keep maintainer scripts from starting the packaged service (no systemd here anyway;
  # the sysvinit script would start a second dockerd on the same socket). Debian images
  # usually ship /usr/sbin/policy-rc.d already (exit 101); add one only for this install.
  local added_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; added_policy=1
  fi
  local rc=0
  { apt-get update -q && apt-get install -y -q --no-install-recommends docker.io iptables ca-certificates; } \
    >"$DIR/apt-install.log" 2>&1 || rc=$?
  [[ $added_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d
  [[ $rc == 0 ]] || { tail -20 "$DIR/apt-install.log" >&2; die "apt-get install docker.io failed (log: $DIR/apt-install.log)"; }
  log "installed in $((SECONDS - t0))s: $(dockerd --version)"
}

# Pick a storage driver that works on the filesystem holding $DATA.
detect_storage() {
  if [[ -n "${STREAMSTACK_DOCKER_STORAGE:-}" ]]; then echo "$STREAMSTACK_DOCKER_STORAGE"; return; fi
  local p; p="$(mktemp -d "$DIR/ovl-probe.XXXXXX")"
  mkdir -p "$p"/{l,u,w,m}
  echo ok >"$p/l/f"
  if mount -t overlay overlay -o "lowerdir=$p/l,upperdir=$p/u,workdir=$p/w" "$p/m" 2>/dev/null; then
    local ok=0; [[ "$(cat "$p/m/f" 2>/dev/null)" == ok ]] && ok=1
    umount "$p/m" || true
    rm -rf "$p"
    if [[ $ok == 1 ]]; then echo overlay2; return; fi
  fi
  rm -rf "$p"
  if [[ -e /dev/fuse ]] && command -v fuse-overlayfs >/dev/null 2>&1; then echo fuse-overlayfs; return; fi
  if [[ -e /dev/fuse ]] && [[ "$(id -u)" == 0 ]] \
     && apt-get install -y -q --no-install-recommends fuse-overlayfs >>"$DIR/apt-install.log" 2>&1; then
    echo fuse-overlayfs; return
  fi
  echo vfs
}

default_mtu() {
  local dev
  dev="$(ip -o route show default 2>/dev/null | awk '{for(i=1;i<NF;i++) if($i=="dev"){print $(i+1); exit}}')"
  if [[ -n "$dev" && -r "/sys/class/net/$dev/mtu" ]]; then cat "/sys/class/net/$dev/mtu"; else echo 1500; fi
}

write_config() {
  local driver="$1" mtu="$2" regs='"127.0.0.1:5001", "localhost:5001"'
  if [[ -n "${STREAMSTACK_REGISTRY:-}" ]]; then regs="$regs, \"$STREAMSTACK_REGISTRY\""; fi
  cat >"$CONF.new" <<EOF
{
  "data-root": "$DATA",
  "storage-driver": "$driver",
  "insecure-registries": [$regs],
  "mtu": $mtu,
  "features": { "buildkit": true },
  "exec-opts": ["native.cgroupdriver=cgroupfs"],
  "log-driver": "json-file",
  "log-opts": { "max-size": "10m", "max-file": "2" },
  "shutdown-timeout": 10
}
EOF
  mv "$CONF.new" "$CONF"
}

cmd_start() {
  mkdir -p "$DIR" "$DATA"
  if pid="$(our_pid)"; then
    if answers; then log "already running (pid $pid)"; cmd_status; return 0; fi
  elif answers; then
    log "an engine not started by this script already answers on $SOCK; using it"
    cmd_status; return 0
  fi
  install_engine
  # cgroup v1 hierarchies must be mounted (they are here: tmpfs /sys/fs/cgroup + per-controller mounts).
  if [[ ! -d /sys/fs/cgroup/memory && ! -e /sys/fs/cgroup/cgroup.controllers ]]; then
    command -v cgroupfs-mount >/dev/null 2>&1 || apt-get install -y -q --no-install-recommends cgroupfs-mount >>"$DIR/apt-install.log" 2>&1
    cgroupfs-mount || die "no cgroup hierarchy mounted and cgroupfs-mount failed"
  fi
  local driver mtu
  if [[ -s "$DIR/storage-driver" && -z "${STREAMSTACK_DOCKER_STORAGE:-}" ]]; then
    driver="$(cat "$DIR/storage-driver")"   # keep the driver the data-root was made with
  else
    driver="$(detect_storage)"; echo "$driver" >"$DIR/storage-driver"
  fi
  mtu="${STREAMSTACK_DOCKER_MTU:-$(default_mtu)}"
  write_config "$driver" "$mtu"
  # A stale socket / pidfile from a killed run would make dockerd refuse to start.
  if [[ -S "$SOCK" ]] && ! answers; then rm -f "$SOCK"; fi
  if [[ -s /var/run/docker.pid ]] && [[ ! -d "/proc/$(cat /var/run/docker.pid)" ]]; then rm -f /var/run/docker.pid; fi
  # dockerd sets the iptables FORWARD policy to DROP when it has to switch ip_forward on; that
  # would also drop forwarded/bridged traffic of other network namespaces on this machine.
  # Remember the policy and put it back once dockerd is up.
  local fwd_policy; fwd_policy="$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" { print $3 }')"
  log "starting dockerd (storage-driver=$driver, mtu=$mtu, data-root=$DATA, log=$LOG)"
  local t0=$SECONDS
  # setsid: own session, so the daemon outlives this shell and is not hit by its signals.
  setsid dockerd --config-file "$CONF" -H "$HOST" >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local pid; pid="$(cat "$PIDFILE")"
  for ((i = 0; i < WAIT * 2; i++)); do
    if answers; then
      log "up in $((SECONDS - t0))s (pid $pid)"
      if [[ "$fwd_policy" == ACCEPT ]] && iptables -S FORWARD | grep -qx -- '-P FORWARD DROP'; then
        iptables -P FORWARD ACCEPT && log "iptables FORWARD policy restored to ACCEPT"
      fi
      cmd_status; return 0
    fi
    if [[ ! -d /proc/$pid ]]; then tail -30 "$LOG" >&2; die "dockerd exited (see $LOG)"; fi
    sleep 0.5
  done
  tail -30 "$LOG" >&2
  die "dockerd did not answer within ${WAIT}s (see $LOG)"
}

# Children (containerd, containerd-shim-*, docker-proxy) of a pid, recursively.
descendants() {
  local p c
  for p in "$@"; do
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do echo "$c"; descendants "$c"; done
  done
}

cmd_stop() {
  local pid
  if pid="$(our_pid)"; then
    local kids; kids="$(descendants "$pid" | tr '\n' ' ')"
    log "stopping dockerd pid $pid (children: ${kids:-none})"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do [[ -d /proc/$pid ]] || break; sleep 0.5; done
    if [[ -d /proc/$pid ]]; then log "dockerd still alive after 30s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    # dockerd stops its managed containerd itself; wait for it (and docker-proxy) to go.
    for ((i = 0; i < 20; i++)); do
      local left=""
      for k in $kids; do [[ -d /proc/$k ]] && left="$left $k"; done
      [[ -z "$left" ]] && break
      [[ $i == 10 ]] && { log "killing leftover children:$left"; kill -KILL $left 2>/dev/null || true; }
      sleep 0.5
    done
  elif answers; then
    log "an engine not started by this script answers on $SOCK; leaving it alone"
    return 0
  else
    log "dockerd not running"
  fi
  # containerd shims re-parent to pid 1; any still alive belong to this engine's containerd
  # (their command line names its socket under /var/run/docker/). Normally dockerd has stopped
  # the containers and the shims are gone; after a SIGKILL of dockerd they are not (nor is the
  # containerd that dockerd ran with --config /var/run/docker/containerd/containerd.toml).
  local shims="" p
  for p in $(ps -eo pid= 2>/dev/null); do
    [[ -r /proc/$p/cmdline ]] || continue
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qE -- '(-namespace moby .*-address /var/run/docker/containerd/containerd.sock|^containerd --config /var/run/docker/containerd/containerd.toml)' \
      && shims="$shims $p"
  done
  if [[ -n "$shims" ]]; then
    local procs; procs="$(descendants $shims | tr '\n' ' ')"
    log "killing leftover containerd/shims:$shims (and their processes: ${procs:-none})"
    kill -KILL $procs $shims 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  log "stopped"
}

cmd_status() {
  if answers; then
    local pid; pid="$(our_pid || echo '?')"
    dcli info --format 'engine: running (pid '"$pid"'), server {{.ServerVersion}}, storage {{.Driver}}, cgroup {{.CgroupDriver}} v{{.CgroupVersion}}, data-root {{.DockerRootDir}}, insecure registries {{range .RegistryConfig.IndexConfigs}}{{if not .Secure}}{{.Name}} {{end}}{{end}}'
    echo "socket: $HOST   log: $LOG"
    return 0
  fi
  echo "engine: not running"
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
