#!/usr/bin/env bash
# The main job: a local kind cluster (1 control plane + 4 workers) with its registry, then
# `pulumi up --stack dev` against it, with state in a local file backend (no Pulumi account).
# Extra arguments go to `pulumi up`, e.g. `scripts/up.sh --diff` or `scripts/up.sh --skip-preview`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
log() { echo "[up] $*"; }
need() { command -v "$1" >/dev/null || { echo "up.sh: '$1' is not on PATH: $2" >&2; exit 2; }; }
need node "install Node.js 20 or newer"
need npm "install Node.js 20 or newer (npm comes with it)"
need docker "install Docker Engine and start it"
need kind "install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
need kubectl "install kubectl 1.30"
need pulumi "install the Pulumi CLI (https://www.pulumi.com/docs/install/)"
docker info >/dev/null 2>&1 || { echo "up.sh: the Docker engine is not answering ('docker info' fails): start it first" >&2; exit 2; }

log "installing node packages (npm ci)"
npm ci --no-audit --no-fund
scripts/kind/cluster.sh up

export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$repo/.pulumi}
# The dev stack holds no secrets; an empty passphrase keeps the local backend prompt-free.
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE-}
mkdir -p "$repo/.pulumi"
log "state backend: $PULUMI_BACKEND_URL"
pulumi stack select dev 2>/dev/null || pulumi stack init dev --secrets-provider passphrase
log "pulumi up --stack dev $*"
pulumi up --stack dev --yes "$@"
log "done; check the system with the commands in: pulumi stack output checks --stack dev"
