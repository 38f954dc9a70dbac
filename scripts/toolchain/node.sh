#!/usr/bin/env bash
# A real Kubernetes node on this machine, joined to the control plane of controlplane.sh.
#
#   scripts/toolchain/node.sh start    # idempotent; fast when already up (controlplane.sh start first)
#   scripts/toolchain/node.sh status   # exit 0 when every process runs and the node is Ready
#   scripts/toolchain/node.sh stop     # undoes what start did: processes, pods, mounts, bridge, node IP,
#                                      # iptables chains, sysctls, cgroups, the Node and kube-dns objects
#   STREAMSTACK_NODE_INDEX=2 scripts/toolchain/node.sh start|status|stop
#                                      # a second real node on the same machine (after node 1; see below)
#
# Processes: containerd (its own instance: config, root, state and socket under the cache, not Docker's),
# kubelet, kube-proxy (iptables mode) and CoreDNS (a host process on the node IP behind the Service
# kube-system/kube-dns 10.96.0.10). Pods get IPs from the bridge ssbr0 (Debian's CNI plugins: bridge,
# host-local, portmap, firewall, loopback) and may talk only to pods, Services and this node: an
# iptables guard drops everything else they send. The node is named after this machine's hostname and
# labelled streamstack.local/real-node=true; pin a namespace to it with the annotation
# scheduler.alpha.kubernetes.io/node-selector: streamstack.local/real-node=true.
# Pid files, configs and state live in ${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}/node, logs in node/logs.
#
# Node 2..8 (STREAMSTACK_NODE_INDEX=k) is a further node on this machine, so pods can move between nodes
# (drains, failover): named <hostname>-k, node IP 10.250.0.k, pods 10.245.(k-1).0/24 on bridge ssbr(k-1),
# its own containerd and kubelet (state in node-k/, pod cgroups under /streamstack-node-k, so no kubelet
# takes another's pods for orphans). kube-proxy and CoreDNS are node 1's: they serve the whole machine.
# Node 1 must be up first; stopping node 1 stops the others first (its stop removes the shared chains).
#
# Environment knobs (checked before anything starts):
#   STREAMSTACK_NODE_INDEX         which node of this machine: 1 (default) to 8
#   STREAMSTACK_NODE_IP            node IP, added as a /32 on lo (default 10.250.0.<index>)
#   STREAMSTACK_NODE_POD_CIDR      this node's pod range (default 10.245.<index-1>.0/24; /16 to /28)
#   STREAMSTACK_NODE_RESERVED_MEM  memory kept from pods (default 512Mi; Mi or Gi)
#   STREAMSTACK_KUBELET_PORT       kubelet's port on the node IP (default 10250)
#   STREAMSTACK_NODE_WAIT          seconds to wait for the node to be Ready (default 120)
#   STREAMSTACK_API_PORT, STREAMSTACK_REGISTRY_PORT   as for controlplane.sh (16443, 5001)
set -euo pipefail

CACHE="${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}"
BIN="$CACHE/bin"
CL="$CACHE/cluster"                  # controlplane.sh's state: its CA signs the node's certificates
INDEX="${STREAMSTACK_NODE_INDEX:-1}"
[[ "$INDEX" =~ ^[1-8]$ ]] || { echo "node.sh: STREAMSTACK_NODE_INDEX must be a node number from 1 to 8, got '$INDEX'" >&2; exit 2; }
if [ "$INDEX" = 1 ]; then ND="$CACHE/node"; else ND="$CACHE/node-$INDEX"; fi
RUN="$ND/run"; LOGS="$ND/logs"; PKI="$ND/pki"
CTRD="$ND/containerd"; SOCK="$ND/containerd/containerd.sock"
KROOT="$ND/kubelet"; CNI="$ND/cni"
KUBECONFIG_FILE="$CACHE/kubeconfig"  # the admin kubeconfig controlplane.sh writes
export PATH="$BIN:$PATH"

NODE_IP="${STREAMSTACK_NODE_IP:-10.250.0.$INDEX}"
POD_CIDR="${STREAMSTACK_NODE_POD_CIDR:-10.245.$((INDEX - 1)).0/24}"
RESERVED_MEM="${STREAMSTACK_NODE_RESERVED_MEM:-512Mi}"
KUBELET_PORT="${STREAMSTACK_KUBELET_PORT:-10250}"
NODE_WAIT="${STREAMSTACK_NODE_WAIT:-120}"
API_PORT="${STREAMSTACK_API_PORT:-16443}"
REGISTRY_PORT="${STREAMSTACK_REGISTRY_PORT:-5001}"
SERVICE_CIDR=10.96.0.0/16            # controlplane.sh's --service-cluster-ip-range
KWOK_CIDR=10.244.0.0/16              # controlplane.sh's kwok pod IPs
REAL_PODS=10.245.0.0/16               # every real node's default pod range: pods of one node may reach another's
DNS_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
BRIDGE=ssbr$((INDEX - 1))
COREDNS_READY=127.0.0.1:18181
if [ "$INDEX" = 1 ]; then
  GUARD=STREAMSTACK-NODE-GUARD; NETNAME=streamstack-node; CGROUP_ROOT=/
else
  GUARD=STREAMSTACK-NODE$INDEX-GUARD; NETNAME=streamstack-node-$INDEX; CGROUP_ROOT=/streamstack-node-$INDEX
fi

# Knobs are checked before anything starts: a typo must not half-start a node.
bad() { echo "node.sh: $*" >&2; exit 2; }
ip2int() { local IFS=. a; read -r -a a <<<"$1"; echo $(( (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3] )); }
is_ipv4() { [[ "$1" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] && (( BASH_REMATCH[1] <= 255 && BASH_REMATCH[2] <= 255 && BASH_REMATCH[3] <= 255 && BASH_REMATCH[4] <= 255 )); }
in_cidr() {  # in_cidr IP CIDR
  local net=${2%/*} len=${2#*/}; local mask=$(( len == 0 ? 0 : (0xffffffff << (32 - len)) & 0xffffffff ))
  (( ($(ip2int "$1") & mask) == ($(ip2int "$net") & mask) ))
}
overlaps() {  # overlaps CIDR CIDR
  local a=$1 b=$2; in_cidr "${a%/*}" "$b" || in_cidr "${b%/*}" "$a"
}
for knob in API_PORT REGISTRY_PORT KUBELET_PORT; do
  v=${!knob}
  [[ "$v" =~ ^[0-9]+$ ]] && (( v >= 1024 && v <= 65535 )) || bad "STREAMSTACK_$knob must be a port from 1024 to 65535, got '$v'"
done
is_ipv4 "$NODE_IP" && [[ ! "$NODE_IP" =~ ^(127|0)\. ]] || bad "STREAMSTACK_NODE_IP must be an IPv4 address outside 127.0.0.0/8 (e.g. 10.250.0.1), got '$NODE_IP'"
if [[ "$POD_CIDR" =~ ^([0-9.]+)/([0-9]+)$ ]] && (( BASH_REMATCH[2] >= 16 && BASH_REMATCH[2] <= 28 )) && is_ipv4 "${POD_CIDR%/*}"; then
  in_cidr "${POD_CIDR%/*}" "$POD_CIDR" && [ "$(( $(ip2int "${POD_CIDR%/*}") & ((1 << (32 - ${POD_CIDR#*/})) - 1) ))" -eq 0 ] \
    || bad "STREAMSTACK_NODE_POD_CIDR must start at its network address (e.g. 10.245.0.0/24), got '$POD_CIDR'"
  for other in "$SERVICE_CIDR" "$KWOK_CIDR" 127.0.0.0/8; do
    overlaps "$POD_CIDR" "$other" && bad "STREAMSTACK_NODE_POD_CIDR must not overlap $other (services, kwok pods, loopback), got '$POD_CIDR'"
  done
else
  bad "STREAMSTACK_NODE_POD_CIDR must be an IPv4 range from /16 to /28 like 10.245.0.0/24, got '$POD_CIDR'"
fi
for other in "$POD_CIDR" "$SERVICE_CIDR" "$KWOK_CIDR"; do
  in_cidr "$NODE_IP" "$other" && bad "STREAMSTACK_NODE_IP must be outside $other (pods, services, kwok pods), got '$NODE_IP'"
done
[[ "$RESERVED_MEM" =~ ^[0-9]+(Mi|Gi)$ ]] || bad "STREAMSTACK_NODE_RESERVED_MEM must be a quantity like 512Mi (Mi or Gi), got '$RESERVED_MEM'"
[[ "$NODE_WAIT" =~ ^[1-9][0-9]*$ ]] || bad "STREAMSTACK_NODE_WAIT must be a whole number of seconds, got '$NODE_WAIT'"

NODE_NAME=$(hostname | tr '[:upper:]' '[:lower:]')
PRIMARY_NAME=$NODE_NAME
[ "$INDEX" = 1 ] || NODE_NAME="$NODE_NAME-$INDEX"
PAUSE_IMAGE="127.0.0.1:$REGISTRY_PORT/streamstack/pause:1.0"
BRIDGE_IP=$(( $(ip2int "${POD_CIDR%/*}") + 1 )); BRIDGE_IP="$((BRIDGE_IP >> 24 & 255)).$((BRIDGE_IP >> 16 & 255)).$((BRIDGE_IP >> 8 & 255)).$((BRIDGE_IP & 255))"
# kubelet sets these at start (trap 7); kube-proxy and the CNI plugins may touch the net ones: saved, put back at stop
SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes net.ipv4.ip_forward net.ipv4.conf.all.route_localnet net.netfilter.nf_conntrack_max
  net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_close_wait
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables)

T0=$(date +%s%N)
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
TAG=node; [ "$INDEX" = 1 ] || TAG="node$INDEX"
log() { printf '[%s %s +%5sms] %s\n' "$TAG" "$(date -u +%H:%M:%S)" "$(( ($(date +%s%N) - T0) / 1000000 ))" "$*"; }
die() { log "ERROR: $*"; exit 1; }
kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" --request-timeout=10s "$@"; }
ctrd() { ctr --address "$SOCK" --namespace k8s.io "$@"; }

COMPONENTS=(containerd kubelet kube-proxy coredns)
[ "$INDEX" = 1 ] || COMPONENTS=(containerd kubelet)

# alive, launch, wait_for, procs_status, stop_procs, issue_cert
. "$(dirname "${BASH_SOURCE[0]}")/procs.sh"

# ---- prerequisites ------------------------------------------------------------------------------------
install_packages() {  # Debian's containerd, runc, CNI plugins (in /usr/lib/cni: trap 1), conntrack, iptables
  local missing=() p
  for p in containerd runc containernetworking-plugins conntrack iptables gcc libc6-dev jq; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  # policy-rc.d: no maintainer script may start Debian's own containerd service
  local added=0; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; added=1; }
  local rc=0
  { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$LOGS/apt.log" 2>&1 || rc=$?
  [ $added = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ $rc = 0 ] || { tail -20 "$LOGS/apt.log"; die "apt-get install failed (log $LOGS/apt.log)"; }
}

# ---- certificates: signed by controlplane.sh's CA ----------------------------------------------------
sign() {  # sign NAME SUBJECT [SAN]: key + cert in $PKI, redone when the control plane's CA changed
  local n=$1 subj=$2 san=${3:-}
  if [ -f "$PKI/$n.crt" ] && openssl verify -CAfile "$CL/pki/ca.crt" "$PKI/$n.crt" >/dev/null 2>&1 &&
     [ "$(cat "$PKI/$n.subj" 2>/dev/null)" = "$subj $san" ]; then return 0; fi
  issue_cert "$PKI" "$CL/pki" "$n" "$subj" "$san"
  echo "$subj $san" >"$PKI/$n.subj"
  log "signed $n ($subj)"
}

write_kubeconfig() {  # write_kubeconfig FILE CERTNAME
  local f=$1 u=$2
  KUBECONFIG="$f.new" kubectl config set-cluster streamstack --server="https://127.0.0.1:$API_PORT" \
    --certificate-authority="$CL/pki/ca.crt" --embed-certs=true >/dev/null
  KUBECONFIG="$f.new" kubectl config set-credentials "$u" --client-certificate="$PKI/$u.crt" \
    --client-key="$PKI/$u.key" --embed-certs=true >/dev/null
  KUBECONFIG="$f.new" kubectl config set-context streamstack --cluster=streamstack --user="$u" >/dev/null
  KUBECONFIG="$f.new" kubectl config use-context streamstack >/dev/null
  chmod 600 "$f.new"; mv "$f.new" "$f"
}

gen_pki() {
  # kubelet: client identity system:node:<name> (Node authorizer) and its serving cert on the node IP
  sign kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  sign kubelet-serving "/CN=$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
  write_kubeconfig "$ND/kubelet.kubeconfig" kubelet
  [ "$INDEX" = 1 ] || return 0
  sign kube-proxy "/CN=system:kube-proxy"   # bound to system:node-proxier by default RBAC
  write_kubeconfig "$ND/kube-proxy.kubeconfig" kube-proxy
}

# ---- host changes, each undone by stop -----------------------------------------------------------------
save_sysctls() {  # once per start..stop: a restart after a crash must not save kubelet's values as the originals
  [ -f "$RUN/sysctls.saved" ] && return 0
  local k; for k in "${SYSCTLS[@]}"; do
    [ -r "/proc/sys/${k//.//}" ] && echo "$k=$(cat "/proc/sys/${k//.//}")"
  done >"$RUN/sysctls.saved.new"
  mv "$RUN/sysctls.saved.new" "$RUN/sysctls.saved"
}

add_node_ip() {  # kubelet refuses a loopback node IP and there is no dummy link type here: a /32 on lo (trap 5)
  ip -4 -o addr show dev lo | grep -q " $NODE_IP/32 " && return 0
  ip addr add "$NODE_IP/32" dev lo
  echo "$NODE_IP" >"$RUN/node-ip.added"
  log "added $NODE_IP/32 to lo"
}

# Pods may reach pods, Services (DNATed to pods or this node before FORWARD) and this node (INPUT,
# never FORWARD): any pod packet that is to be forwarded anywhere but the pod range is dropped. In
# mangle FORWARD, which runs before filter FORWARD, so the firewall plugin's and Docker's ACCEPTs
# (filter) cannot let anything past it.
install_guard() {
  iptables -t mangle -N "$GUARD" 2>/dev/null || iptables -t mangle -F "$GUARD"
  iptables -t mangle -A "$GUARD" -s "$POD_CIDR" -d "$POD_CIDR" -j RETURN
  iptables -t mangle -A "$GUARD" -s "$POD_CIDR" -d "$REAL_PODS" -j RETURN   # the other real nodes' pods
  iptables -t mangle -A "$GUARD" -s "$POD_CIDR" -j DROP
  iptables -t mangle -A "$GUARD" -i "$BRIDGE" -j DROP   # a pod with NET_RAW forging its source
  iptables -t mangle -C FORWARD -j "$GUARD" 2>/dev/null || iptables -t mangle -I FORWARD 1 -j "$GUARD"
  # pods have no IPv6 addresses; nothing they send over IPv6 is forwarded either
  if ip6tables -t mangle -L >/dev/null 2>&1; then
    ip6tables -t mangle -N "$GUARD" 2>/dev/null || ip6tables -t mangle -F "$GUARD"
    ip6tables -t mangle -A "$GUARD" -i "$BRIDGE" -j DROP
    ip6tables -t mangle -C FORWARD -j "$GUARD" 2>/dev/null || ip6tables -t mangle -I FORWARD 1 -j "$GUARD"
  fi
}

# Node 2..8: its pods' cgroups under their own root in every v1 hierarchy, so node 1's kubelet (whose
# pods are under /kubepods) never sees them as orphans to remove, nor they its. kubelet wants the root made.
make_cgroup_root() {
  [ "$CGROUP_ROOT" = / ] && return 0
  local d
  for d in /sys/fs/cgroup/*/; do
    [ -L "${d%/}" ] && continue           # cpu -> cpu,cpuacct and the like
    [ -f "$d/cgroup.procs" ] || continue
    mkdir -p "$d${CGROUP_ROOT#/}"
    # a new cpuset cgroup starts with no CPUs or memory nodes: take the parent's
    if [ -f "$d/cpuset.cpus" ]; then
      [ -n "$(cat "$d${CGROUP_ROOT#/}/cpuset.cpus")" ] || cat "$d/cpuset.cpus" >"$d${CGROUP_ROOT#/}/cpuset.cpus"
      [ -n "$(cat "$d${CGROUP_ROOT#/}/cpuset.mems")" ] || cat "$d/cpuset.mems" >"$d${CGROUP_ROOT#/}/cpuset.mems"
    fi
  done
}

mount_kubelet_root() {  # kubelet wants its root dir rshared for mount propagation; / is private here (trap 8)
  mkdir -p "$KROOT"
  mountpoint -q "$KROOT" || mount --bind "$KROOT" "$KROOT"
  mount --make-rshared "$KROOT"
}

# ---- containerd ---------------------------------------------------------------------------------------
write_cni_config() {
  mkdir -p "$CNI/net.d" "$CNI/ipam"
  # firewall after bridge: br_netfilter sends bridged pod traffic through FORWARD, whose policy Docker
  # sets to DROP (trap 4); the plugin accepts each pod's traffic without touching the policy
  cat >"$CNI/net.d/10-$NETNAME.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$NETNAME",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$CNI/ipam", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$BRIDGE_IP"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall", "backend": "iptables"}
  ]
}
EOF
}

write_containerd_config() {
  mkdir -p "$CTRD/root" "$CTRD/state" "$CTRD/runc" "$CTRD/opt" "$ND/pod-logs"
  local h; for h in "127.0.0.1:$REGISTRY_PORT" "localhost:$REGISTRY_PORT"; do
    mkdir -p "$CTRD/certs.d/$h"
    # the local registry speaks plain HTTP: any image pushed there can be pulled by pods (trap 3)
    printf 'server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$h" "$h" >"$CTRD/certs.d/$h/hosts.toml"
  done
  # restrict_oom_score_adj: root lacks CAP_SYS_RESOURCE, runc cannot set the sandbox's -998 (trap 2)
  cat >"$CTRD/config.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CTRD/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CNI/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CTRD/certs.d"
EOF
}

start_containerd() {
  local d; for d in /var/lib/cni /var/lib/cni/results /run/netns; do
    [ -e "$d" ] || grep -qx "$d" "$RUN/dirs.created" 2>/dev/null || echo "$d" >>"$RUN/dirs.created"
  done
  write_cni_config
  write_containerd_config
  local fresh=0 from=0
  if ! alive containerd; then fresh=1; from=$(wc -l <"$LOGS/containerd.log" 2>/dev/null || echo 0); fi
  launch containerd containerd --config "$CTRD/config.toml"
  wait_for containerd 30 ctr --address "$SOCK" version
  # `ctr version` answers before the CRI plugin has recovered its state; a kubelet started in between
  # fails "server is not initialized yet" and exits. The plugin logs this line as it starts serving.
  [ "$fresh" = 0 ] || wait_for "containerd's CRI plugin" 60 cri_serving "$from"
}

cri_serving() { tail -n "+$(($1 + 1))" "$LOGS/containerd.log" | grep -q 'msg="Start streaming server"'; }

# No pause image can be pulled from anywhere: a static C program, imported with Docker and pushed to
# the local registry once (trap 3). Rebuilt only when the registry does not have it (controlplane.sh reset).
build_pause_image() {
  curl -fsS -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://127.0.0.1:$REGISTRY_PORT/v2/streamstack/pause/manifests/1.0" 2>/dev/null && return 0
  docker info >/dev/null 2>&1 || die "the pause image is not in the registry yet and Docker does not answer: run scripts/docker/engine.sh start"
  log "building $PAUSE_IMAGE (static C, docker import, push)"
  mkdir -p "$ND/pause/rootfs"
  cat >"$ND/pause/pause.c" <<'EOF'
/* The pod sandbox's process: holds the namespaces, reaps zombies, exits on SIGINT/SIGTERM. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGINT, quit); signal(SIGTERM, quit); signal(SIGCHLD, reap);
  for (;;) pause();
}
EOF
  gcc -static -Os -s -o "$ND/pause/rootfs/pause" "$ND/pause/pause.c"
  tar -C "$ND/pause/rootfs" -cf "$ND/pause/pause.tar" pause
  docker import --change 'ENTRYPOINT ["/pause"]' "$ND/pause/pause.tar" "$PAUSE_IMAGE" >/dev/null
  docker push "$PAUSE_IMAGE" >"$LOGS/pause-push.log" 2>&1 || { cat "$LOGS/pause-push.log"; die "docker push $PAUSE_IMAGE failed"; }
}

# ---- kubelet ------------------------------------------------------------------------------------------
start_kubelet() {
  local mem_kib; mem_kib=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
  # allocatable = the machine's CPUs, its memory less STREAMSTACK_NODE_RESERVED_MEM and the eviction threshold
  cat >"$ND/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: $NODE_IP
healthzPort: 10248
cgroupRoot: $CGROUP_ROOT
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $CL/pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$SOCK
imageServiceEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: false
makeIPTablesUtilChains: false
clusterDNS: [$DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
podLogsDir: $ND/pod-logs
maxPods: 110
systemReserved: {memory: $RESERVED_MEM}
enforceNodeAllocatable: [pods]
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, nodefs.inodesFree: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 95
imageGCLowThresholdPercent: 90
serializeImagePulls: false
staticPodPath: ""
EOF
  launch kubelet kubelet --config "$ND/kubelet.yaml" --kubeconfig "$ND/kubelet.kubeconfig" \
    --root-dir "$KROOT" --cert-dir "$PKI" --volume-plugin-dir "$KROOT/volume-plugins" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --node-labels streamstack.local/real-node=true \
    --pod-infra-container-image "$PAUSE_IMAGE"
  log "  node $NODE_NAME: $(( mem_kib / 1024 )) MiB, $(nproc) CPUs, $RESERVED_MEM reserved"
}

# ---- kube-proxy ---------------------------------------------------------------------------------------
start_kube_proxy() {
  # conntrack 0s/0: leave the host's conntrack sysctls alone; localhostNodePorts false: no route_localnet (trap 11)
  cat >"$ND/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $ND/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $(in_cidr "${POD_CIDR%/*}" "$REAL_PODS" && echo "$REAL_PODS" || echo "$POD_CIDR")
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
oomScoreAdj: 0
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s, udpTimeout: 0s, udpStreamTimeout: 0s}
iptables: {localhostNodePorts: false, masqueradeAll: false, syncPeriod: 30s, minSyncPeriod: 1s}
EOF
  launch kube-proxy kube-proxy --config "$ND/kube-proxy.yaml"
}

# ---- CoreDNS ------------------------------------------------------------------------------------------
# Pods cannot reach the API server (loopback only, no endpoints for 10.96.0.1): CoreDNS runs on the host,
# on the node IP, with the admin kubeconfig; no forward plugin, so nothing it answers leaves the machine
# (names outside the cluster get NXDOMAIN). (trap 10)
start_coredns() {
  cat >"$ND/Corefile" <<EOF
$CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
    bind $NODE_IP
    errors
    ready $COREDNS_READY
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_FILE streamstack
        pods insecure
        ttl 5
    }
    cache 5
}
. {
    bind $NODE_IP
    errors
    template ANY ANY {
        rcode NXDOMAIN
    }
}
EOF
  launch coredns coredns -conf "$ND/Corefile"
  wait_for coredns 30 curl -fsS "http://$COREDNS_READY/ready"
}

apply_dns_service() {  # selector-less kube-dns Service with hand-made EndpointSlice and Endpoints
  kc apply -f - >"$LOGS/apply.log" 2>&1 <<EOF || { cat "$LOGS/apply.log"; die "applying kube-dns failed"; }
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS, app.kubernetes.io/managed-by: streamstack-node-sh}
spec:
  clusterIP: $DNS_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-$NODE_NAME
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: streamstack-node-sh}
addressType: IPv4
endpoints:
- addresses: [$NODE_IP]
  conditions: {ready: true}
  nodeName: $NODE_NAME
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {endpointslice.kubernetes.io/skip-mirror: "true"}
subsets:
- addresses: [{ip: $NODE_IP, nodeName: $NODE_NAME}]
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF
}

# ---- start / stop / status ----------------------------------------------------------------------------
node_ready() {
  [ "$(kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

cmd_start() {
  [ "$(id -u)" = 0 ] || die "must run as root (mounts, iptables, addresses)"
  local b; for b in kubelet kube-proxy coredns kubectl; do
    command -v "$b" >/dev/null || die "$b not found: run scripts/toolchain/install.sh cluster first"
  done
  [ -f "$CL/pki/ca.key" ] && kc get --raw /readyz >/dev/null 2>&1 || die "the control plane is not up: run scripts/toolchain/controlplane.sh start first"
  if [ "$INDEX" != 1 ]; then  # kube-proxy, CoreDNS, sysctls and the shared chains are node 1's
    STREAMSTACK_NODE_INDEX=1 "$SELF" status >/dev/null 2>&1 || die "node 1 is not up: run scripts/toolchain/node.sh start first"
  fi
  mkdir -p "$RUN" "$LOGS" "$PKI"
  echo "$NODE_NAME" >"$ND/node-name"   # which containerd runs a node's pods (tests find a pod's host pid by it)
  install_packages
  gen_pki
  [ "$INDEX" = 1 ] && save_sysctls
  add_node_ip
  install_guard
  start_containerd
  build_pause_image
  make_cgroup_root
  mount_kubelet_root
  start_kubelet
  if [ "$INDEX" = 1 ]; then
    start_kube_proxy
    start_coredns
    apply_dns_service
  fi
  wait_for "node $NODE_NAME Ready" "$NODE_WAIT" node_ready
  log "up: node $NODE_NAME ($NODE_IP, pods $POD_CIDR, DNS $DNS_IP), logs in $LOGS"
  kc get node "$NODE_NAME" -o wide
}

# With kubelet gone nobody would tear pods down through CRI: kill and delete every task and container of
# our containerd, remembering the sandboxes' network namespaces (bind mounts in /run/netns) to unmount.
remove_pods() {
  alive containerd || return 0
  local id ids; ids=$(ctrd containers ls -q 2>/dev/null || true)
  for id in $ids; do
    ctrd containers info "$id" 2>/dev/null | jq -r '.Spec.linux.namespaces[]? | select(.type == "network") | .path // empty'
  done | sort -u >>"$RUN/netns.list"
  for id in $(ctrd tasks ls -q 2>/dev/null); do ctrd tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  for id in $(ctrd tasks ls -q 2>/dev/null); do ctrd tasks rm -f "$id" >/dev/null 2>&1 || true; done
  for id in $ids; do ctrd containers rm "$id" >/dev/null 2>&1 || true; done
  [ -z "$ids" ] || log "removed $(wc -w <<<"$ids") containers"
}

kill_leftover_shims() {  # shims re-parent to init; ours name our socket on their command line
  local p left=""
  for p in $(pgrep -f -- "-address $SOCK" || true); do left="$left $p"; done
  [ -z "$left" ] && return 0
  log "killing leftover shims:$left"; kill -KILL $left 2>/dev/null || true
}

unmount_all() {  # pod volumes, overlay rootfs, sandbox shm, the kubelet root bind; deepest first
  local m
  if [ -f "$RUN/netns.list" ]; then
    while read -r m; do
      [ -n "$m" ] || continue
      mountpoint -q "$m" 2>/dev/null && umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
      rm -f "$m"
    done <"$RUN/netns.list"
    rm -f "$RUN/netns.list"
  fi
  awk -v p="$ND/" 'index($5, p) == 1 || $5 == substr(p, 1, length(p) - 1) { print $5 }' /proc/self/mountinfo | sort -r |
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"; done
}

# iptables chains of kubelet/kube-proxy (KUBE-*), the CNI plugins (CNI-*) and the guard, both families
remove_chains() {
  local ipt t line chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for t in filter nat mangle raw; do
      "$ipt" -t "$t" -S >/dev/null 2>&1 || continue
      # rules in other chains that jump to ours
      "$ipt" -t "$t" -S | awk -v g="$GUARD" '
        function ours(c) { return c ~ /^(KUBE-|CNI-)/ || c == g }
        $1 == "-A" && !ours($2) { for (i = 3; i < NF; i++) if ($i == "-j" && ours($(i + 1))) { print; break } }' |
      while read -r line; do eval "$ipt -t $t -D ${line#-A }" 2>/dev/null || true; done
      for chain in $("$ipt" -t "$t" -S | awk -v g="$GUARD" '$1 == "-N" && ($2 ~ /^(KUBE-|CNI-)/ || $2 == g) { print $2 }'); do
        "$ipt" -t "$t" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$ipt" -t "$t" -S | awk -v g="$GUARD" '$1 == "-N" && ($2 ~ /^(KUBE-|CNI-)/ || $2 == g) { print $2 }'); do
        "$ipt" -t "$t" -X "$chain" 2>/dev/null || log "cannot delete $ipt -t $t chain $chain"
      done
    done
  done
}

restore_sysctls() {
  [ -f "$RUN/sysctls.saved" ] || return 0
  local kv k v now
  while IFS= read -r kv; do
    k=${kv%%=*} v=${kv#*=}
    now=$(cat "/proc/sys/${k//.//}" 2>/dev/null) || continue
    if [ "$now" != "$v" ]; then echo "$v" >"/proc/sys/${k//.//}" 2>/dev/null && log "restored $k: $now -> $v" || log "cannot restore $k to $v"; fi
  done <"$RUN/sysctls.saved"
  rm -f "$RUN/sysctls.saved"
}

remove_cgroups() {  # kubelet's QoS hierarchy (kubepods, burstable, besteffort, pod dirs) in every v1 controller
  local d sub=kubepods
  [ "$CGROUP_ROOT" = / ] || sub=${CGROUP_ROOT#/}
  for d in /sys/fs/cgroup/*/$sub; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

# Node 2..8 first when node 1 stops: node 1's stop removes the chains their pods' traffic goes through.
stop_other_nodes() {
  local d k
  for d in "$CACHE"/node-[2-8]; do
    [ -d "$d/run" ] || continue
    k=${d##*-}
    STREAMSTACK_NODE_INDEX=$k "$SELF" stop || log "stopping node $k failed"
  done
}

remove_guard() {  # node 2..8: only its own chain; the KUBE-*/CNI-* ones are shared and node 1's to remove
  local ipt line
  for ipt in iptables ip6tables; do
    "$ipt" -t mangle -S >/dev/null 2>&1 || continue
    while "$ipt" -t mangle -D FORWARD -j "$GUARD" 2>/dev/null; do :; done
    "$ipt" -t mangle -F "$GUARD" 2>/dev/null && "$ipt" -t mangle -X "$GUARD" 2>/dev/null || true
  done
}

cmd_stop() {
  local api=0; [ -f "$KUBECONFIG_FILE" ] && kc get --raw /readyz >/dev/null 2>&1 && api=1
  [ "$INDEX" = 1 ] && stop_other_nodes
  stop_procs kubelet kube-proxy coredns
  remove_pods
  stop_procs containerd
  kill_leftover_shims
  unmount_all
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE" && log "deleted bridge $BRIDGE"; fi
  if [ -f "$RUN/node-ip.added" ]; then
    local ip; ip=$(cat "$RUN/node-ip.added")
    ip addr del "$ip/32" dev lo 2>/dev/null && log "removed $ip/32 from lo" || true
    rm -f "$RUN/node-ip.added"
  fi
  if [ "$INDEX" = 1 ]; then remove_chains; restore_sysctls; else remove_guard; fi
  remove_cgroups
  rm -rf "$CNI/ipam"
  local f id  # libcni's result cache: each of our sandboxes has a $NETNAME-<id>-eth0 and a cni-loopback-<id>-lo
  for f in /var/lib/cni/results/"$NETNAME"-*-eth0; do
    [ -e "$f" ] || continue
    id=${f#/var/lib/cni/results/$NETNAME-}; id=${id%-eth0}
    rm -f "$f" "/var/lib/cni/results/cni-loopback-$id-lo"
  done
  if [ -f "$RUN/dirs.created" ]; then  # host directories containerd's CNI code made (libcni cache, netns)
    sort -r "$RUN/dirs.created" | while read -r d; do rmdir "$d" 2>/dev/null || true; done
    rm -f "$RUN/dirs.created"
  fi
  if [ $api = 1 ]; then  # the Node (its pods are then garbage-collected) and the kube-dns objects start made
    kc delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 && log "deleted node $NODE_NAME" || true
    if [ "$INDEX" = 1 ]; then
      kc -n kube-system delete service,endpoints kube-dns --ignore-not-found >/dev/null 2>&1 || true
      kc -n kube-system delete endpointslice "kube-dns-$NODE_NAME" --ignore-not-found >/dev/null 2>&1 || true
    fi
  fi
  log "stopped in $(( ($(date +%s%N) - T0) / 1000000 ))ms"
}

cmd_status() {
  local rc=0
  procs_status "${COMPONENTS[@]}" || rc=1
  if node_ready; then log "node $NODE_NAME: Ready ($NODE_IP, pods $POD_CIDR)"; else log "node $NODE_NAME: not Ready"; rc=1; fi
  return $rc
}

case "${1:-}" in
  start)
    if cmd_status >/dev/null 2>&1; then log "already up (node $NODE_NAME, $NODE_IP)"; exit 0; fi
    cmd_start; log "start took $(( ($(date +%s%N) - T0) / 1000000 ))ms" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
