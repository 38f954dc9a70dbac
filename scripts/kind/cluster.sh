#!/usr/bin/env bash
# Creates (or deletes) the local kind cluster `streamstack` with a registry on localhost:5001 that
# every node pulls from, as kind documents (https://kind.sigs.k8s.io/docs/user/local-registry/).
#   scripts/kind/cluster.sh up [--workers N] [--load-images]   create registry + cluster (idempotent)
#   scripts/kind/cluster.sh down                               delete both
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cluster=streamstack
reg_name=kind-registry
reg_port=5001
workers=4
load_images=false
cmd=${1:-up}; shift || true
case "$cmd" in up|down) ;; *) echo "cluster.sh: unknown command '$cmd' (allowed: up, down)" >&2; exit 2 ;; esac
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --load-images) load_images=true; shift ;;
    *) echo "cluster.sh: unknown flag '$1' (allowed: --workers N, --load-images)" >&2; exit 2 ;;
  esac
done
case "$workers" in ''|*[!0-9]*) echo "cluster.sh: --workers must be a whole number, got '$workers'" >&2; exit 2 ;; esac
log() { echo "[kind] $*"; }
for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "cluster.sh: '$tool' is not on PATH; install it first (see README.md, Requirements)" >&2; exit 2; }
done

down() {
  log "deleting cluster $cluster and registry $reg_name"
  kind delete cluster --name "$cluster" || true
  docker rm -f "$reg_name" >/dev/null 2>&1 || true
}

up() {
  if [ "$(docker inspect -f '{{.State.Running}}' "$reg_name" 2>/dev/null || true)" != "true" ]; then
    log "starting registry $reg_name on 127.0.0.1:$reg_port"
    docker rm -f "$reg_name" >/dev/null 2>&1 || true
    docker run -d --restart=always -p "127.0.0.1:${reg_port}:5000" --network bridge --name "$reg_name" registry:2 >/dev/null
  fi
  if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
    log "cluster $cluster exists"
  else
    log "creating cluster $cluster: 1 control plane + $workers workers"
    # The config holds four workers (the reference); --workers rewrites that count.
    config=$(mktemp)
    awk -v n="$workers" '/role: worker/{w++; if (w>n) {skip=1} else {skip=0}} /role: control-plane/{skip=0} !skip' "$here/cluster.yaml" > "$config"
    kind create cluster --config "$config"
    rm -f "$config"
  fi
  log "pointing every node's containerd at the registry"
  for node in $(kind get nodes --name "$cluster"); do
    docker exec "$node" mkdir -p "/etc/containerd/certs.d/localhost:${reg_port}"
    printf '[host."http://%s:5000"]\n' "$reg_name" | docker exec -i "$node" cp /dev/stdin "/etc/containerd/certs.d/localhost:${reg_port}/hosts.toml"
  done
  if [ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "$reg_name")" = "null" ]; then
    docker network connect kind "$reg_name"
  fi
  kubectl --context "kind-$cluster" apply -f - <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "localhost:${reg_port}"
YAML
  if $load_images; then
    # As the reference's reset script did: for nodes that cannot pull from Docker Hub themselves.
    for image in cassandra:4.1.3 confluentinc/cp-zookeeper:7.3.5 confluentinc/cp-kafka:7.3.5; do
      log "loading $image into every node"
      docker image inspect "$image" >/dev/null 2>&1 || docker pull "$image"
      kind load docker-image "$image" --name "$cluster"
    done
  fi
  log "ready: kubectl context kind-$cluster, registry localhost:$reg_port"
}

case "$cmd" in
  up) up ;;
  down) down ;;
esac
