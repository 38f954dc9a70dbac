#!/usr/bin/env bash
# A local Kubernetes 1.32 control plane on loopback with kwok-simulated nodes and an image registry.
#
#   scripts/toolchain/controlplane.sh start    # idempotent; fast when already up
#   scripts/toolchain/controlplane.sh status   # exit 0 when everything is up
#   scripts/toolchain/controlplane.sh stop     # stops every process it started (pid files)
#   scripts/toolchain/controlplane.sh reset    # stop + delete cluster state (etcd data, PV dirs, registry data)
#
# Processes: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, a fake volume
# provisioner (bash loop: one local PV per pending PVC of class "standard" or "shared" once the scheduler
# has picked its node) and registry 127.0.0.1:5001. "standard" volumes stay on their node, as kind's;
# "shared" ones (a directory of this machine, which every real node of node.sh mounts alike: the stand-in
# for network storage such as NFS) may follow their pod to any real node.
# Nodes (like the reference kind cluster): kind-control-plane (tainted) + kind-worker..kind-worker4, all
# labelled type=kwok; scripts/toolchain/node.sh can join this machine as a real node beside them.
# State, pid files, logs and the kubeconfig live in ${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}/cluster.
set -euo pipefail

CACHE="${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}"
BIN="$CACHE/bin"
CL="$CACHE/cluster"
PKI="$CL/pki"; RUN="$CL/run"; LOGS="$CL/logs"
KUBECONFIG_FILE="$CACHE/kubeconfig"
export PATH="$BIN:$PATH"

ETCD_PORT="${STREAMSTACK_ETCD_PORT:-12379}"
API_PORT="${STREAMSTACK_API_PORT:-16443}"
KCM_PORT="${STREAMSTACK_KCM_PORT:-10357}"
SCHED_PORT="${STREAMSTACK_SCHED_PORT:-10359}"
KWOK_PORT="${STREAMSTACK_KWOK_PORT:-10347}"
REGISTRY_PORT="${STREAMSTACK_REGISTRY_PORT:-5001}"
SERVICE_CIDR=10.96.0.0/16
POD_CIDR=10.244.0.0/16
WORKERS="${STREAMSTACK_WORKERS:-4}"
NODE_CPU="${STREAMSTACK_NODE_CPU:-32}"; NODE_MEM="${STREAMSTACK_NODE_MEM:-64Gi}"

# Knobs are checked before anything starts: a typo must not half-start a control plane.
bad() { echo "controlplane.sh: $*" >&2; exit 2; }
for knob in ETCD_PORT API_PORT KCM_PORT SCHED_PORT KWOK_PORT REGISTRY_PORT; do
  v=${!knob}
  [[ "$v" =~ ^[0-9]+$ ]] && (( v >= 1024 && v <= 65535 )) || bad "STREAMSTACK_$knob must be a port from 1024 to 65535, got '$v'"
done
[[ "$WORKERS" =~ ^[0-9]+$ ]] && (( WORKERS <= 16 )) || bad "STREAMSTACK_WORKERS must be a whole number from 0 to 16, got '$WORKERS'"
[[ "$NODE_CPU" =~ ^[1-9][0-9]*$ ]] || bad "STREAMSTACK_NODE_CPU must be a whole number of CPUs (e.g. 32), got '$NODE_CPU'"
[[ "$NODE_MEM" =~ ^[1-9][0-9]*(Ki|Mi|Gi|Ti)$ ]] || bad "STREAMSTACK_NODE_MEM must be a quantity like 64Gi (Ki, Mi, Gi, Ti), got '$NODE_MEM'"

T0=$(date +%s%N)
log() { printf '[controlplane %s +%5sms] %s\n' "$(date -u +%H:%M:%S)" "$(( ($(date +%s%N) - T0) / 1000000 ))" "$*"; }
die() { log "ERROR: $*"; exit 1; }
kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }

COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok provisioner registry)

# alive, launch, wait_for, procs_status, stop_procs, issue_cert
. "$(dirname "${BASH_SOURCE[0]}")/procs.sh"

# ---- certificates (openssl, once) -----------------------------------------------------------------------
# sign NAME SUBJECT [SAN]: key + cert in $PKI signed by the CA (clientAuth + serverAuth)
sign() { issue_cert "$PKI" "$PKI" "$@"; }

gen_pki() {
  command -v openssl >/dev/null || die "openssl missing: run scripts/toolchain/install.sh"
  if [ ! -f "$PKI/.done" ]; then
    log "generating certificates and service-account keys in $PKI"
    rm -rf "$PKI"; mkdir -p "$PKI"
    openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -nodes -key "$PKI/ca.key" -sha256 -days 3650 -subj "/CN=streamstack-ca" -out "$PKI/ca.crt" 2>/dev/null
    # the apiserver is reached as 127.0.0.1 from here and as the kubernetes Service (first IP of the range) in-cluster
    sign apiserver "/CN=kube-apiserver" \
      "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    sign admin "/O=system:masters/CN=kubernetes-admin"                    # cluster-admin via group
    sign controller-manager "/CN=system:kube-controller-manager"          # bound by default RBAC
    sign scheduler "/CN=system:kube-scheduler"                            # bound by default RBAC
    sign kwok "/O=system:masters/CN=kwok"                                 # kwok patches node/pod status everywhere
    # the service-account token signing key pair (apiserver signs and verifies, controller-manager signs)
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
    chmod 600 "$PKI"/*.key
    touch "$PKI/.done"
  fi
  # the apiserver's client identity towards kubelets (logs, exec, port-forward on node.sh's real node);
  # bound to system:kubelet-api-admin in apply_objects. Made here too for caches older than it.
  [ -f "$PKI/apiserver-kubelet-client.crt" ] || sign apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client"
}

write_kubeconfig() {  # write_kubeconfig FILE USER
  local f=$1 u=$2
  KUBECONFIG="$f" kubectl config set-cluster streamstack --server="https://127.0.0.1:$API_PORT" \
    --certificate-authority="$PKI/ca.crt" --embed-certs=true >/dev/null
  KUBECONFIG="$f" kubectl config set-credentials "$u" --client-certificate="$PKI/$u.crt" \
    --client-key="$PKI/$u.key" --embed-certs=true >/dev/null
  KUBECONFIG="$f" kubectl config set-context streamstack --cluster=streamstack --user="$u" --namespace=default >/dev/null
  KUBECONFIG="$f" kubectl config use-context streamstack >/dev/null
  chmod 600 "$f"
}

# ---- cluster objects --------------------------------------------------------------------------------
node_yaml() {  # node_yaml NAME ROLE
  local n=$1 role=$2 taints="" rolelabel=""
  if [ "$role" = control-plane ]; then
    rolelabel="node-role.kubernetes.io/control-plane: \"\""
    taints="  taints:
  - key: node-role.kubernetes.io/control-plane
    effect: NoSchedule"
  fi
  cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $n
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: $n
    $rolelabel
spec:
$taints
status:
  allocatable: {cpu: "$NODE_CPU", memory: $NODE_MEM, pods: "110", ephemeral-storage: 500Gi}
  capacity: {cpu: "$NODE_CPU", memory: $NODE_MEM, pods: "110", ephemeral-storage: 500Gi}
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: fake
    kubeProxyVersion: fake
---
EOF
}

apply_objects() {
  {
    node_yaml kind-control-plane control-plane
    local i; for ((i = 1; i <= WORKERS; i++)); do node_yaml "kind-worker$([ $i -gt 1 ] && echo $i)" worker; done
    # default StorageClass named and bound like kind's (WaitForFirstConsumer: the scheduler picks the
    # node first, then the provisioner loop below makes a local PV on that node)
    cat <<'EOF'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: streamstack.local/fake
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: shared
provisioner: streamstack.local/fake
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: streamstack:kube-apiserver-kubelet-client
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}
EOF
  } >"$RUN/objects.yaml"
  # volumeBindingMode is immutable: a class left by an older start (Immediate) is replaced
  local mode; mode=$(kc get storageclass standard -o 'jsonpath={.volumeBindingMode}' 2>/dev/null || true)
  if [ -n "$mode" ] && [ "$mode" != WaitForFirstConsumer ]; then kc delete storageclass standard >/dev/null; fi
  kc apply -f "$RUN/objects.yaml" >"$LOGS/apply.log" 2>&1 || { cat "$LOGS/apply.log"; die "applying nodes/StorageClass failed"; }
}

# The fake provisioner: nothing else provisions volumes. Every 2s it creates a `local` PV pre-bound
# (claimRef) to each Pending PVC of class "standard" or "shared" that the scheduler has given a node
# (annotation volume.kubernetes.io/selected-node, WaitForFirstConsumer). "standard": node affinity to that
# node, so the pod is bound to it. "shared": affinity to every real node (label streamstack.local/real-node),
# which all mount the same directory of this machine, so a pod may move to another. The directory ($CL/volumes/pvc-<uid>) is made
# first: kubelet on a real node mounts it and applies fsGroup (it does not for hostPath). Released or
# Failed PVs it made are deleted with their directories. Both classes allow expansion: a larger request on
# a Bound claim is granted by the stand-in resizer in the same loop.
provisioner_loop() {
  cat >"$RUN/provisioner.sh" <<EOF
#!/usr/bin/env bash
export PATH="$BIN:\$PATH"
kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" --request-timeout=10s "\$@"; }
while :; do
  kc get pvc -A -o jsonpath='{range .items[?(@.status.phase=="Pending")]}{.metadata.namespace} {.metadata.name} {.metadata.uid} {.spec.storageClassName} {.spec.resources.requests.storage} {.spec.accessModes[0]} {.spec.volumeMode} {.metadata.annotations.volume\.kubernetes\.io/selected-node}{"\n"}{end}' 2>/dev/null |
  while read -r ns name uid class size mode vmode node; do
    # standard: the volume stays on the node the scheduler picked. shared: any real node mounts it.
    case "\$class" in
      standard) key=kubernetes.io/hostname; value="\$node" ;;
      shared) key=streamstack.local/real-node; value=true ;;
      *) continue ;;
    esac
    [ -n "\$node" ] || continue   # no selected node yet: no pod using the claim has been scheduled
    pv="pvc-\$uid"
    kc get pv "\$pv" >/dev/null 2>&1 && continue
    echo "\$(date -u +%FT%TZ) provisioning \$pv for \$ns/\$name (\$size \$mode) on node \$node"
    mkdir -p "$CL/volumes/\$pv"
    kc apply -f - <<PV || true
apiVersion: v1
kind: PersistentVolume
metadata:
  name: \$pv
  annotations: {pv.kubernetes.io/provisioned-by: streamstack.local/fake}
  labels: {streamstack.local/fake-pv: "true"}
spec:
  capacity: {storage: \$size}
  accessModes: [\${mode:-ReadWriteOnce}]
  volumeMode: \${vmode:-Filesystem}
  persistentVolumeReclaimPolicy: Delete
  storageClassName: \$class
  claimRef: {namespace: \$ns, name: \$name, uid: \$uid}
  local: {path: "$CL/volumes/\$pv"}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {key: \$key, operator: In, values: ["\$value"]}
PV
  done
  # The stand-in resizer, as a CSI driver's external-resizer works for a driver with no node step (a
  # network file system, say): a Bound claim of its PVs whose request exceeds its capacity gets that
  # capacity, the claim's status first, then the PV (kubelet grows a file system only where the PV is
  # larger than the claim's status, and a local directory has no size of its own to grow).
  kc get pvc -A -o jsonpath='{range .items[?(@.status.phase=="Bound")]}{.metadata.namespace} {.metadata.name} {.spec.storageClassName} {.spec.volumeName} {.spec.resources.requests.storage} {.status.capacity.storage}{"\n"}{end}' 2>/dev/null |
  while read -r ns name class pv want have; do
    case "\$class" in standard|shared) ;; *) continue ;; esac
    [ -n "\$want" ] && [ "\$want" != "\$have" ] || continue
    [ "\$(kc get pv "\$pv" -o jsonpath='{.metadata.labels.streamstack\.local/fake-pv}' 2>/dev/null)" = true ] || continue
    echo "\$(date -u +%FT%TZ) resizing \$ns/\$name (\$pv) \$have -> \$want"
    kc -n "\$ns" patch pvc "\$name" --subresource=status --type merge -p "{\\"status\\":{\\"capacity\\":{\\"storage\\":\\"\$want\\"}}}" >/dev/null &&
      kc patch pv "\$pv" --type merge -p "{\\"spec\\":{\\"capacity\\":{\\"storage\\":\\"\$want\\"}}}" >/dev/null || true
  done
  kc get pv -l streamstack.local/fake-pv=true -o jsonpath='{range .items[?(@.status.phase!="Bound")]}{.metadata.name} {.status.phase}{"\n"}{end}' 2>/dev/null |
  while read -r pv phase; do
    case "\$phase" in Released|Failed)
      echo "\$(date -u +%FT%TZ) deleting \$phase \$pv and $CL/volumes/\$pv"
      kc delete pv "\$pv" --wait=false && rm -rf "$CL/volumes/\$pv" || true;;
    esac
  done
  sleep 2
done
EOF
  chmod +x "$RUN/provisioner.sh"
}

# ---- start / stop / status ----------------------------------------------------------------------------
api_ready() { kc get --raw /readyz >/dev/null 2>&1; }

cmd_start() {
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok registry openssl; do
    command -v "$b" >/dev/null || die "$b not found: run scripts/toolchain/install.sh cluster first"
  done
  mkdir -p "$RUN" "$LOGS" "$CL/etcd" "$CL/volumes" "$CL/registry"
  gen_pki
  [ -f "$KUBECONFIG_FILE" ] || write_kubeconfig "$KUBECONFIG_FILE" admin
  for u in controller-manager scheduler kwok; do [ -f "$CL/$u.kubeconfig" ] || write_kubeconfig "$CL/$u.kubeconfig" "$u"; done

  launch etcd etcd --name streamstack --data-dir "$CL/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "streamstack=http://127.0.0.1:$((ETCD_PORT + 1))" \
    --quota-backend-bytes 4294967296 --auto-compaction-retention 1 --log-level warn
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

  # --endpoint-reconciler-type=none: the apiserver's own endpoint would be 127.0.0.1, which Endpoints
  # validation rejects (loopback); nothing in-cluster talks to it (kwok pods run nothing)
  launch kube-apiserver kube-apiserver \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC --allow-privileged=true \
    --endpoint-reconciler-type none --profiling=false \
    --enable-admission-plugins PodNodeSelector \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP,Hostname
  # PodNodeSelector (on top of the defaults): a namespace annotated scheduler.alpha.kubernetes.io/node-selector
  # pins its pods (type=kwok for the deploy suite, streamstack.local/real-node=true on node.sh's node);
  # --kubelet-*: a client cert for kubelet's webhook authn/z, and its InternalIP (the apiserver refuses
  # to proxy to a loopback address, and kwok nodes' hostnames do not resolve)
  wait_for kube-apiserver 90 api_ready
  log "kube-apiserver ready at https://127.0.0.1:$API_PORT"

  launch kube-controller-manager kube-controller-manager \
    --kubeconfig "$CL/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$CL/controller-manager.kubeconfig" --authorization-kubeconfig "$CL/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --use-service-account-credentials=true --service-cluster-ip-range "$SERVICE_CIDR" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --leader-elect=false --profiling=false \
    --node-monitor-grace-period 1h --pvclaimbinder-sync-period 2s
  # --pvclaimbinder-sync-period 2s (default 15s): a PV made for a waiting claim is bound within ~2s,
  # so each StatefulSet replica (OrderedReady) does not wait a resync for its volume
  # scheduler backoff 1s..2s (default 1s..10s): a pod that waited for its PVC is retried quickly
  cat >"$CL/scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection: {kubeconfig: "$CL/scheduler.kubeconfig"}
leaderElection: {leaderElect: false}
podInitialBackoffSeconds: 1
podMaxBackoffSeconds: 2
EOF
  launch kube-scheduler kube-scheduler --config "$CL/scheduler.yaml" \
    --authentication-kubeconfig "$CL/scheduler.kubeconfig" --authorization-kubeconfig "$CL/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --profiling=false
  # kwok only takes nodes annotated kwok.x-k8s.io/node=fake; pod IPs come from --cidr. With leases
  # (renewed every ~10s) nodes stay Ready; the 1h grace period above keeps a busy 2-core machine
  # from marking the simulated nodes NotReady (and evicting every pod) when a heartbeat is late
  launch kwok kwok --node-lease-duration-seconds 40 --kubeconfig "$CL/kwok.kubeconfig" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --cidr "$POD_CIDR" --node-ip 127.0.0.1 --server-address "127.0.0.1:$KWOK_PORT"

  cat >"$CL/registry.yml" <<EOF
version: 0.1
log: {level: info}
storage:
  filesystem: {rootdirectory: $CL/registry}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
  launch registry registry serve "$CL/registry.yml"

  apply_objects
  provisioner_loop
  launch provisioner bash "$RUN/provisioner.sh"

  wait_for "default ServiceAccount" 60 kc get serviceaccount default -n default
  # count kwok nodes only: a real node registered by node.sh (Ready or not) is not one of them
  wait_for "kwok nodes Ready" 60 bash -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG_FILE' get nodes -l type=kwok --no-headers 2>/dev/null | grep -c ' Ready ')\" -eq $((WORKERS + 1)) ]"
  wait_for registry 30 curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/"
  log "up: KUBECONFIG=$KUBECONFIG_FILE, registry 127.0.0.1:$REGISTRY_PORT, logs in $LOGS"
  kc get nodes
}

cmd_stop() { stop_procs "${COMPONENTS[@]}"; }

cmd_status() {
  local rc=0
  procs_status "${COMPONENTS[@]}" || rc=1
  if api_ready; then log "apiserver: ready (KUBECONFIG=$KUBECONFIG_FILE)"; kc get nodes --no-headers 2>/dev/null | sed 's/^/    /'
  else log "apiserver: not ready"; rc=1; fi
  return $rc
}

case "${1:-}" in
  start)
    if cmd_status >/dev/null 2>&1; then log "already up (KUBECONFIG=$KUBECONFIG_FILE, registry 127.0.0.1:$REGISTRY_PORT)"; exit 0; fi
    cmd_start; log "start took $(( ($(date +%s%N) - T0) / 1000000 ))ms" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  reset) cmd_stop; rm -rf "$CL/etcd" "$CL/volumes" "$CL/registry"; log "cluster state removed (certificates kept)" ;;
  *) echo "usage: $0 start|stop|status|reset" >&2; exit 2 ;;
esac
