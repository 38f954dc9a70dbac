#!/usr/bin/env bash
# Proves the real node of node.sh end to end; rerunnable, exits non-zero when a check fails.
#
#   scripts/toolchain/node-check.sh
#
# Starts what is not running (controlplane.sh, scripts/docker/engine.sh, node.sh), pushes the node-base
# image (scripts/docker/node-base.sh) to the local registry, and in namespace node-check (pinned to the
# real node by the annotation scheduler.alpha.kubernetes.io/node-selector) checks that:
#   - a pod from that image runs and goes Ready on the real node; kubectl logs, exec and port-forward work;
#   - a 2-replica StatefulSet (headless Service, volumeClaimTemplate, uid 1000 / fsGroup 1000) writes to
#     its claims; pods resolve <svc>.<ns>.svc.cluster.local and <pod>.<svc>.<ns>.svc.cluster.local and
#     reach another pod through a ClusterIP Service; the egress guard is in place;
#   - `node.sh start` when up is a no-op; `node.sh stop` leaves no process, mount, interface, address
#     or iptables chain of the node; a second start brings the node and the StatefulSet (same data) back.
# Prints timings (node Ready, pod start) and the idle RSS of kubelet, containerd, kube-proxy and CoreDNS.
# Leaves the node up and deletes its namespace at the end. Traffic goes only to addresses on this machine.
set -euo pipefail
[ $# -eq 0 ] || { echo "node-check.sh: takes no arguments, got '$*'" >&2; exit 2; }

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=env.sh
. "$HERE/env.sh"
ND="$STREAMSTACK_CACHE/node"
NS=node-check
IMAGE="$STREAMSTACK_REGISTRY/streamstack/node-base:20"
NODE_NAME=$(hostname | tr '[:upper:]' '[:lower:]')
NODE_IP="${STREAMSTACK_NODE_IP:-10.250.0.1}"

FAILED=0; PASSED=0
ms() { echo $(( $(date +%s%N) / 1000000 )); }
say() { printf '[node-check %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
ok() { PASSED=$((PASSED + 1)); say "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); say "FAIL $*"; }
check() {  # check WHAT CMD...: ok when CMD exits 0
  local what=$1; shift
  if "$@" >/tmp/node-check.out 2>&1; then ok "$what"; else fail "$what: $(tail -5 /tmp/node-check.out)"; fi
}
kx() { kubectl -n "$NS" "$@"; }
chains() { { iptables-save; ip6tables-save 2>/dev/null; } | grep -cE -- '(KUBE-|CNI-|STREAMSTACK-NODE)' || true; }
node_mounts() { grep -cE -- " ($ND/|/run/netns/cni-)" /proc/self/mountinfo || true; }
POD_VETHS=""   # the host ends of the pods' veths, read while the node is up (Docker's veths are not ours)
node_links() {
  local n=0 l; for l in ssbr0 $POD_VETHS; do ip link show "$l" >/dev/null 2>&1 && n=$((n + 1)); done; echo $n
}
node_procs() {
  local n=0 p; for p in $(pgrep -f -- "$ND/" || true); do [ "$p" != $$ ] && n=$((n + 1)); done; echo $n
}
show_state() {  # show_state LABEL
  say "--- $1: ip link / chains / mounts / processes"
  ip -br link | sed 's/^/    /'
  say "    iptables-save + ip6tables-save lines naming KUBE-/CNI-/STREAMSTACK-NODE: $(chains)"
  say "    mounts under $ND or /run/netns/cni-*: $(node_mounts) (mount | grep: $(mount | grep -cE -- "$ND|/run/netns/cni-" || true))"
  say "    processes running from $ND: $(node_procs); node IP on lo: $(ip -4 -o addr show dev lo | grep -c " $NODE_IP/32" || true)"
}

# ---- bring everything up ---------------------------------------------------------------------------
"$HERE/controlplane.sh" start >/dev/null
"$REPO/scripts/docker/engine.sh" start >/dev/null 2>&1 || { say "Docker engine does not start (scripts/docker/engine.sh start)"; exit 1; }
t=$(ms); "$HERE/node.sh" start | tail -3; say "node.sh start: $(( $(ms) - t )) ms"

say "pushing $IMAGE"
base=$("$REPO/scripts/docker/node-base.sh")
docker tag "$base" "$IMAGE" && docker push "$IMAGE" >/dev/null

# ---- workloads -------------------------------------------------------------------------------------
kubectl delete namespace "$NS" --ignore-not-found --wait=true --timeout=120s >/dev/null
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $NS
  annotations: {scheduler.alpha.kubernetes.io/node-selector: streamstack.local/real-node=true}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: $NS, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: $IMAGE
    command: [node, -e, "require('http').createServer((q, r) => r.end('hello from ' + require('os').hostname())).listen(8080, () => console.log('web listening on 8080'))"]
    ports: [{containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
    resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {cpu: 500m, memory: 128Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: $NS}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: $NS}
spec: {clusterIP: None, selector: {app: db}, ports: [{port: 8080}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: $NS}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 2
      securityContext: {runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000}
      containers:
      - name: db
        image: $IMAGE
        command: [sh, -c, 'hostname >> /data/owner && exec node -e "setInterval(() => {}, 1 << 30)"']
        readinessProbe: {exec: {command: [test, -s, /data/owner]}, periodSeconds: 1}
        volumeMounts: [{name: data, mountPath: /data}]
        resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {cpu: 500m, memory: 128Mi}}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 64Mi}}}
EOF
t=$(ms)
check "pod web Ready on the real node" kx wait pod/web --for=condition=Ready --timeout=120s
say "pod web Ready $(( $(ms) - t )) ms after apply"
check "StatefulSet db (2 replicas, claims, uid 1000 / fsGroup 1000) rolled out" kx rollout status sts/db --timeout=180s
say "StatefulSet db Ready $(( $(ms) - t )) ms after apply"
check "pods run on $NODE_NAME" bash -c "[ \"\$(kubectl -n $NS get pods -o jsonpath='{.items[*].spec.nodeName}')\" = '$NODE_NAME $NODE_NAME $NODE_NAME' ]"

check "db-0 wrote its claim as uid 1000" bash -c "[ \"\$(kubectl -n $NS exec db-0 -- sh -c 'id -u; tail -1 /data/owner; stat -c %g /data')\" = \"\$(printf '1000\ndb-0\n1000')\" ]"
check "kubectl logs" bash -c "kubectl -n $NS logs web | grep -q 'web listening on 8080'"
check "kubectl exec" bash -c "[ \"\$(kubectl -n $NS exec web -- cat /etc/hostname)\" = web ]"
svcip=$(kx get svc web -o jsonpath='{.spec.clusterIP}')
db1ip=$(kx get pod db-1 -o jsonpath='{.status.podIP}')
check "DNS: web.$NS.svc.cluster.local -> $svcip" bash -c "kubectl -n $NS exec db-0 -- getent hosts web.$NS.svc.cluster.local | grep -q '^$svcip '"
check "DNS: db-1.db.$NS.svc.cluster.local -> $db1ip" bash -c "kubectl -n $NS exec web -- getent hosts db-1.db.$NS.svc.cluster.local | grep -q '^$db1ip '"
check "DNS: a short name through the search path (web)" bash -c "kubectl -n $NS exec db-0 -- getent hosts web | grep -q '^$svcip '"
check "pod to pod through the ClusterIP Service" bash -c "kubectl -n $NS exec db-1 -- node -e \"require('http').get('http://web.$NS.svc.cluster.local/', r => r.on('data', d => process.stdout.write(d)))\" | grep -q 'hello from web'"
pf=$(mktemp); kx port-forward pod/web 18089:8080 >"$pf" 2>&1 & pfpid=$!
for _ in $(seq 50); do grep -q Forwarding "$pf" && break; sleep 0.1; done
check "kubectl port-forward" bash -c "curl -fsS --max-time 5 http://127.0.0.1:18089/ | grep -q 'hello from web'"
kill "$pfpid" 2>/dev/null || true; wait "$pfpid" 2>/dev/null || true; rm -f "$pf"
check "egress guard: pod packets leaving the pod range are dropped (mangle FORWARD)" \
  bash -c "iptables -t mangle -C FORWARD -j STREAMSTACK-NODE-GUARD && iptables -t mangle -S STREAMSTACK-NODE-GUARD | grep -q -- '-j DROP'"
check "node label and allocatable" bash -c "kubectl get node $NODE_NAME -o jsonpath='{.metadata.labels.streamstack\.local/real-node} {.status.allocatable.cpu}' | grep -qx 'true $(nproc)'"

say "--- idle RSS (after 10 s)"; sleep 10
for c in kubelet containerd kube-proxy coredns; do
  pid=$(cat "$ND/run/$c.pid"); say "    $c: $(( $(ps -o rss= -p "$pid") / 1024 )) MiB RSS, cpu time $(ps -o time= -p "$pid")"
done
say "    shims: $(pgrep -fc -- "-address $ND/containerd/containerd.sock" || true), $(( $(ps -o rss= -p "$(pgrep -fd, -- "-address $ND/containerd/containerd.sock")" | awk '{s+=$1} END {print s}') / 1024 )) MiB RSS in all"

# ---- idempotence, stop, start again ----------------------------------------------------------------
t=$(ms); "$HERE/node.sh" start >/dev/null; took=$(( $(ms) - t ))
if [ $took -lt 3000 ]; then ok "node.sh start when up: $took ms"; else fail "node.sh start when up took $took ms"; fi

POD_VETHS=$(ip -o link show master ssbr0 | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | tr '\n' ' ')
show_state "before stop"
say "    pod veths on ssbr0: $POD_VETHS"
t=$(ms); "$HERE/node.sh" stop | sed 's/^/    /'; say "node.sh stop: $(( $(ms) - t )) ms"
show_state "after stop"
check "no process left" test "$(node_procs)" -eq 0
check "no mount left" test "$(node_mounts)" -eq 0
check "no bridge or pod veth left" test "$(node_links)" -eq 0
check "no iptables chain or rule left" test "$(chains)" -eq 0
check "node IP removed from lo" bash -c "! ip -4 -o addr show dev lo | grep -q ' $NODE_IP/32'"
check "Node object removed" bash -c "! kubectl get node $NODE_NAME"

t=$(ms); "$HERE/node.sh" start | tail -1; say "node.sh start again: $(( $(ms) - t )) ms"
# the StatefulSet's status still says Ready from before the stop: wait for the containers themselves;
# each start appends the pod's name to its claim, so two lines mean the same volume came back
back() {
  local p n; for p in db-0 db-1; do n=$(kx exec "$p" -- grep -c "$p" /data/owner 2>/dev/null) || return 1; [ "$n" -ge 2 ] || return 1; done
}
t=$(ms); for _ in $(seq 360); do back && break; sleep 0.5; done
check "StatefulSet db runs again on the node with the data it wrote before the stop" back
say "db-0 and db-1 back $(( $(ms) - t )) ms after the second start"

kubectl delete namespace "$NS" --wait=false >/dev/null
echo "$PASSED passed, $FAILED failed"
[ $FAILED -eq 0 ]
