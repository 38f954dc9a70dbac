#!/usr/bin/env bash
# End-to-end check of the local image pipeline:
#   engine up -> node base image -> BuildKit build of a tiny Dockerfile (FROM ${NODE_BASE}, RUN npm install
#   from the npm registry, USER 10001) -> docker run -> push to the registry on 127.0.0.1:5001 -> pull back.
# If nothing listens on 127.0.0.1:5001, Debian's docker-registry is started there for the check and
# stopped afterwards. Prints "verify: OK" at the end; exits non-zero on the first failure.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REG=127.0.0.1:5001
log() { printf '[verify] %s\n' "$*" >&2; }

"$HERE/engine.sh" start >/dev/null
BASE="$("$HERE/node-base.sh")"
log "base image: $BASE"

WORK="$(mktemp -d /tmp/streamstack-verify.XXXXXX)"
REG_PID=""
cleanup() {
  if [[ -n "$REG_PID" ]]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; log "temporary registry stopped"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/Dockerfile" <<'EOF'
ARG NODE_BASE
FROM ${NODE_BASE}
WORKDIR /app
RUN npm init -y >/dev/null && npm install --no-audit is-number
USER 10001
CMD ["node", "-e", "console.log('is-number(42)=' + require('/app/node_modules/is-number')(42) + ' uid=' + process.getuid() + ' node=' + process.version)"]
EOF

IMG="$REG/streamstack/verify:$(date +%s)"
# The Pulumi docker provider's Image builds through the engine API with BuildKit (builderVersion
# BuilderBuildKit is its default): the 20.10 CLI from docker.io, /usr/bin/docker, with DOCKER_BUILDKIT=1
# takes the same path. The v28 CLI in /usr/local/bin has no buildx plugin and would use the legacy builder.
CLI=docker
[[ -x /usr/bin/docker ]] && CLI=/usr/bin/docker
t=$SECONDS
DOCKER_BUILDKIT=1 "$CLI" build --progress=plain --build-arg NODE_BASE="$BASE" -t "$IMG" "$WORK" >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log" >&2; exit 1; }
log "built $IMG with BuildKit in $((SECONDS - t))s"

out="$(docker run --rm "$IMG")"
log "run: $out"
[[ "$out" == "is-number(42)=true uid=10001 node=v"* ]] || { log "unexpected output"; exit 1; }

if ! curl -fsS -m 3 "http://$REG/v2/" >/dev/null 2>&1; then
  command -v docker-registry >/dev/null 2>&1 || {
    log "installing Debian's docker-registry"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-registry >"$WORK/apt.log" 2>&1
  }
  mkdir -p "$WORK/registry"
  cat >"$WORK/registry.yml" <<EOF
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $WORK/registry }, delete: { enabled: true } }
http: { addr: $REG }
EOF
  docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 </dev/null &
  REG_PID=$!
  for _ in $(seq 1 40); do curl -fsS -m 1 "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.25; done
  curl -fsS -m 3 "http://$REG/v2/" >/dev/null || { cat "$WORK/registry.log" >&2; exit 1; }
  log "temporary registry started on $REG (pid $REG_PID)"
fi

t=$SECONDS
docker push "$IMG" >"$WORK/push.log" 2>&1 || { tail -20 "$WORK/push.log" >&2; exit 1; }
log "pushed in $((SECONDS - t))s: $(grep -o 'digest: sha256:[0-9a-f]*' "$WORK/push.log")"
docker rmi "$IMG" >/dev/null
docker pull -q "$IMG" >/dev/null
[[ "$(docker run --rm "$IMG")" == "$out" ]] || { log "pulled image runs differently"; exit 1; }
docker rmi "$IMG" >/dev/null
log "pulled back from $REG and ran it"
echo "verify: OK"
