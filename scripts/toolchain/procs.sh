# shellcheck shell=bash
# What controlplane.sh and node.sh share: their processes by pid file, and certificates signed by the
# control plane's CA. Source it after setting RUN (pid files), LOGS (one log per process) and log/die.

alive() { local f="$RUN/$1.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# launch NAME CMD...: runs CMD in its own session (pid = process group id, so stop kills its children too)
launch() {
  local name=$1; shift
  if alive "$name"; then return 0; fi
  setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/$name.pid"
  log "started $name (pid $!, log $LOGS/$name.log)"
}

wait_for() {  # wait_for WHAT SECONDS CMD...: polls CMD every 0.2s
  local what=$1 secs=$2 i; shift 2
  for ((i = 0; i < secs * 5; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "$what not ready after ${secs}s (logs in $LOGS)"
}

procs_status() {  # procs_status NAME...: logs each as running or not; false when any is not
  local rc=0 name
  for name in "$@"; do
    if alive "$name"; then log "$name: running (pid $(cat "$RUN/$name.pid"))"; else log "$name: NOT running"; rc=1; fi
  done
  return $rc
}

stop_procs() {  # stop_procs NAME...: TERM their process groups at once, KILL what is left after 10s
  local name pid n p left pids=()
  for name in "$@"; do
    [ -f "$RUN/$name.pid" ] || continue
    pid=$(cat "$RUN/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      pids+=("$name:$pid")
    fi
  done
  for ((n = 0; n < 100; n++)); do
    left=0; for p in "${pids[@]}"; do kill -0 "${p#*:}" 2>/dev/null && left=1; done
    [ $left = 0 ] && break; sleep 0.1
  done
  for p in "${pids[@]}"; do
    name=${p%%:*} pid=${p#*:}
    if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; log "killed $name (pid $pid)"
    else log "stopped $name (pid $pid)"; fi
  done
  for name in "$@"; do rm -f "$RUN/$name.pid"; done
}

# issue_cert DIR CADIR NAME SUBJECT [SAN]: DIR/NAME.key + DIR/NAME.crt signed by CADIR/ca.{crt,key}
# (clientAuth + serverAuth); the serial file stays in DIR.
issue_cert() {
  local dir=$1 ca=$2 n=$3 subj=$4 san=${5:-}
  ( cd "$dir"
    openssl genrsa -out "$n.key" 2048 2>/dev/null; chmod 600 "$n.key"
    openssl req -new -key "$n.key" -subj "$subj" -out "$n.csr" 2>/dev/null
    { echo "basicConstraints=CA:FALSE"; echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=serverAuth,clientAuth"; [ -n "$san" ] && echo "subjectAltName=$san"; } >"$n.ext"
    openssl x509 -req -in "$n.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial -CAserial "$dir/ca.srl" \
      -days 3650 -sha256 -extfile "$n.ext" -out "$n.crt" 2>/dev/null
    rm -f "$n.csr" "$n.ext" )
}
