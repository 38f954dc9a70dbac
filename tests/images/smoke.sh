#!/usr/bin/env bash
# Smoke test of the stand-in images with plain `docker run` on a user-defined network: what a person
# would check by hand on the official images. Builds them first (fast when up to date).
#
# Usage: tests/images/smoke.sh [--keep]     --keep leaves the containers running for a look
# Knobs: STREAMSTACK_REGISTRY, STREAMSTACK_CACHE (as build.sh); SMOKE_TIMEOUT (seconds per wait, 240)
# Ends with `N passed, N failed`; exit 0 only if nothing failed.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bad() { printf 'smoke.sh: %s\n' "$*" >&2; exit 2; }
KEEP=0
for arg in "$@"; do
  case "$arg" in --keep) KEEP=1 ;; *) bad "unknown flag '$arg' (allowed: --keep)" ;; esac
done
TIMEOUT="${SMOKE_TIMEOUT:-240}"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || bad "SMOKE_TIMEOUT must be a whole number of seconds, got '$TIMEOUT'"

DOCKER_BIN="$(command -v /usr/bin/docker || command -v docker)"
docker() { "$DOCKER_BIN" "$@"; }
NET=streamstack-smoke
ZK=streamstack-smoke-zookeeper-0 KAFKA=streamstack-smoke-kafka-0 CASS=streamstack-smoke-cassandra-0
PASS=0 FAIL=0
log() { printf '[smoke] %s\n' "$*" >&2; }
check() {  # check NAME COMMAND...: one test
  local name="$1"; shift
  if out="$("$@" 2>&1)"; then PASS=$((PASS + 1)); log "ok   $name"
  else FAIL=$((FAIL + 1)); log "FAIL $name"; printf '%s\n' "$out" | tail -n 15 | sed 's/^/       /' >&2; fi
}
wait_for() {  # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do ((SECONDS < deadline)) || return 1; sleep 3; done
}
cleanup() {
  [[ "$KEEP" == 1 ]] && { log "kept: $ZK $KAFKA $CASS on network $NET"; return; }
  docker rm -f "$ZK" "$KAFKA" "$CASS" >/dev/null 2>&1
  docker network rm "$NET" >/dev/null 2>&1
}

refs="$(bash "$HERE/build.sh")" || { log "build.sh failed"; exit 1; }
ref() { sed -n "s/^$1=//p" <<<"$refs"; }
ZK_IMAGE="$(ref cp-zookeeper)" KAFKA_IMAGE="$(ref cp-kafka)" CASS_IMAGE="$(ref cassandra)"

docker rm -f "$ZK" "$KAFKA" "$CASS" >/dev/null 2>&1
docker network rm "$NET" >/dev/null 2>&1
trap cleanup EXIT
docker network create "$NET" >/dev/null

# --- the images' fixed facts, as the official images have them ---------------------------------------
inspect() { docker image inspect -f "$2" "$1"; }
check "cp-zookeeper: user appuser, VOLUMEs data/log/secrets, CMD run" bash -c '
  [ "$(docker image inspect -f "{{.Config.User}} {{json .Config.Volumes}} {{json .Config.Cmd}} {{.Config.WorkingDir}}" '"$ZK_IMAGE"')" = \
    "appuser {\"/etc/zookeeper/secrets\":{},\"/var/lib/zookeeper/data\":{},\"/var/lib/zookeeper/log\":{}} [\"/etc/confluent/docker/run\"] /home/appuser" ]'
check "cp-kafka: user appuser, VOLUMEs data/secrets, CMD run" bash -c '
  [ "$(docker image inspect -f "{{.Config.User}} {{json .Config.Volumes}} {{json .Config.Cmd}} {{.Config.WorkingDir}}" '"$KAFKA_IMAGE"')" = \
    "appuser {\"/etc/kafka/secrets\":{},\"/var/lib/kafka/data\":{}} [\"/etc/confluent/docker/run\"] /home/appuser" ]'
check "cassandra: VOLUME /var/lib/cassandra, entrypoint, CMD cassandra -f, runs as root first" bash -c '
  [ "$(docker image inspect -f "{{.Config.User}}|{{json .Config.Volumes}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}" '"$CASS_IMAGE"')" = \
    "|{\"/var/lib/cassandra\":{}} [\"docker-entrypoint.sh\"] [\"cassandra\",\"-f\"]" ]'
check "appuser is uid/gid 1000, cassandra is uid/gid 999" bash -c '
  [ "$(docker run --rm '"$KAFKA_IMAGE"' id)" = "uid=1000(appuser) gid=1000(appuser) groups=1000(appuser)" ] &&
  [ "$(docker run --rm --entrypoint id '"$CASS_IMAGE"' cassandra)" = "uid=999(cassandra) gid=999(cassandra) groups=999(cassandra)" ]'

# --- env handling without a server --------------------------------------------------------------------
check "cp-kafka refuses a missing KAFKA_ZOOKEEPER_CONNECT" bash -c '
  out="$(docker run --rm -e KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://x:9092 '"$KAFKA_IMAGE"' 2>&1)"; rc=$?
  [ $rc -ne 0 ] && grep -q "KAFKA_ZOOKEEPER_CONNECT is required." <<<"$out"'
check "cp-kafka refuses KAFKA_ADVERTISED_PORT" bash -c '
  out="$(docker run --rm -e KAFKA_ZOOKEEPER_CONNECT=zk:2181 -e KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://x:9092 -e KAFKA_ADVERTISED_PORT=9092 '"$KAFKA_IMAGE"' 2>&1)"; rc=$?
  [ $rc -ne 0 ] && grep -q "advertised.port is deprecated" <<<"$out"'
check "cp-kafka: KAFKA_* -> kafka.properties by upstream rules (_ . __ _ ___ -), JVM vars excluded" bash -c '
  props="$(docker run --rm -e KAFKA_ZOOKEEPER_CONNECT=zk:2181 -e KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://kafka-0.k:9092 \
    -e KAFKA_HEAP_OPTS=-Xmx1g -e KAFKA_OPTS=-Dx=1 -e KAFKA_LOG4J_ROOT_LOGLEVEL=WARN -e KAFKA_JMX_OPTS=-Dy -e KAFKA_FOO__BAR___BAZ_QUX=1 \
    '"$KAFKA_IMAGE"' bash -c "/etc/confluent/docker/configure >/dev/null && sort /etc/kafka/kafka.properties")"
  [ "$props" = "$(printf "%s\n" advertised.listeners=PLAINTEXT://kafka-0.k:9092 foo_bar-baz.qux=1 listeners=PLAINTEXT://0.0.0.0:9092 \
    log.dirs=/var/lib/kafka/data zookeeper.connect=zk:2181)" ]'
check "cp-zookeeper: ZOOKEEPER_SERVERS -> server.N, ZOOKEEPER_SERVER_ID -> myid, limits defaulted" bash -c '
  out="$(docker run --rm -e ZOOKEEPER_CLIENT_PORT=2181 -e ZOOKEEPER_SERVER_ID=2 -e "ZOOKEEPER_SERVERS=a:2888:3888;0.0.0.0:2888:3888;c:2888:3888" \
    '"$ZK_IMAGE"' bash -c "/etc/confluent/docker/configure >/dev/null && cat /etc/kafka/zookeeper.properties /var/lib/zookeeper/data/myid")"
  for l in dataDir=/var/lib/zookeeper/data dataLogDir=/var/lib/zookeeper/log clientPort=2181 initLimit=10 syncLimit=5 \
    server.1=a:2888:3888 server.2=0.0.0.0:2888:3888 server.3=c:2888:3888; do grep -qx "$l" <<<"$out" || { echo "missing $l"; exit 1; }; done
  [ "$(tail -n1 <<<"$out")" = 2 ]'

# --- ZooKeeper + one broker, as the program runs them --------------------------------------------------
log "starting $ZK, $KAFKA, $CASS"
docker run -d --name "$ZK" --hostname zookeeper-0 --network "$NET" --memory 512m \
  -e ZOOKEEPER_SERVER_ID=1 -e ZOOKEEPER_CLIENT_PORT=2181 -e ZOOKEEPER_TICK_TIME=2000 -e ZOOKEEPER_INIT_LIMIT=10 \
  -e ZOOKEEPER_SYNC_LIMIT=5 -e KAFKA_OPTS=-Dzookeeper.4lw.commands.whitelist=ruok,srvr,mntr -e "KAFKA_HEAP_OPTS=-Xms256m -Xmx256m" \
  "$ZK_IMAGE" >/dev/null
docker run -d --name "$KAFKA" --hostname kafka-0 --network "$NET" --memory 1g \
  -e KAFKA_BROKER_ID=0 -e "KAFKA_ZOOKEEPER_CONNECT=$ZK:2181" -e "KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://$KAFKA:9092" \
  -e "KAFKA_HEAP_OPTS=-Xms512m -Xmx512m" -e KAFKA_NUM_PARTITIONS=4 -e KAFKA_DEFAULT_REPLICATION_FACTOR=1 \
  -e KAFKA_MIN_INSYNC_REPLICAS=1 -e KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=1 -e KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR=1 \
  -e KAFKA_TRANSACTION_STATE_LOG_MIN_ISR=1 -e KAFKA_LOG_DIRS=/var/lib/kafka/data "$KAFKA_IMAGE" >/dev/null
docker run -d --name "$CASS" --hostname cassandra-0 --network "$NET" --memory 1g \
  -e MAX_HEAP_SIZE=512M -e HEAP_NEWSIZE=128M -e "CASSANDRA_SEEDS=$CASS" -e CASSANDRA_CLUSTER_NAME=ece573-prj04 \
  -e CASSANDRA_ENDPOINT_SNITCH=GossipingPropertyFileSnitch -e CASSANDRA_DC=datacenter1 -e CASSANDRA_RACK=rack1 \
  "$CASS_IMAGE" >/dev/null

zk4() { docker exec "$ZK" bash -c "exec 3<>/dev/tcp/127.0.0.1/2181 && printf $1 >&3 && grep -q '$2' <&3"; }
check "zookeeper: answers srvr (Mode: standalone) and ruok, as the readiness/liveness probes ask" \
  bash -c "$(declare -f wait_for zk4 docker); DOCKER_BIN=$DOCKER_BIN; ZK=$ZK; wait_for $TIMEOUT zk4 srvr 'Mode: ' && zk4 ruok imok"
check "zookeeper: the run steps' '===>' lines, as upstream" bash -c \
  "docker logs $ZK 2>&1 | grep -q '^===> Launching zookeeper ... ' && docker logs $ZK 2>&1 | grep -q '^===> Check if /var/lib/zookeeper/log is writable ...'"
check "zookeeper: KAFKA_HEAP_OPTS and KAFKA_OPTS reach the JVM" bash -c \
  "docker exec $ZK ps -o args= -C java | grep -q -- '-Xms256m -Xmx256m .*-Dzookeeper.4lw.commands.whitelist=ruok,srvr,mntr'"
check "kafka: the broker registers id 0 in ZooKeeper (zookeeper-shell ls /brokers/ids)" bash -c \
  "$(declare -f wait_for docker); DOCKER_BIN=$DOCKER_BIN; wait_for $TIMEOUT bash -c 'docker exec $ZK zookeeper-shell localhost:2181 ls /brokers/ids 2>/dev/null | grep -qx \"\\[0\\]\"'"
check "kafka: kafka-topics creates and describes a topic (4 partitions)" bash -c "
  docker exec $KAFKA kafka-topics --bootstrap-server $KAFKA:9092 --create --topic smoke --partitions 4 --replication-factor 1 &&
  docker exec $KAFKA kafka-topics --bootstrap-server $KAFKA:9092 --describe --topic smoke | grep -q 'PartitionCount: 4'"
check "kafka: kafka-broker-api-versions and kafka-consumer-groups answer" bash -c "
  docker exec $KAFKA kafka-broker-api-versions --bootstrap-server $KAFKA:9092 | grep -q '(id: 0 rack' &&
  docker exec $KAFKA kafka-consumer-groups --bootstrap-server $KAFKA:9092 --list"
check "kafka: KAFKA_HEAP_OPTS reaches the broker's JVM" bash -c \
  "docker exec $KAFKA ps -o args= -C java | grep -q -- '-Xms512m -Xmx512m .*kafka.Kafka /etc/kafka/kafka.properties'"

# --- Cassandra --------------------------------------------------------------------------------------
# the program's readiness probe, verbatim (POD_IP = the container's IP here)
ready() { docker exec -e "POD_IP=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$CASS")" "$CASS" \
  bash -c 'nodetool status | grep -qE "^UN +${POD_IP} "'; }
check "cassandra: nodetool status shows this node UN at the container's IP (the readiness probe)" bash -c \
  "$(declare -f wait_for ready docker); DOCKER_BIN=$DOCKER_BIN; CASS=$CASS; wait_for $TIMEOUT ready"
check "cassandra: cqlsh -e 'describe keyspaces'" bash -c \
  "$(declare -f wait_for docker); DOCKER_BIN=$DOCKER_BIN; wait_for 60 docker exec $CASS cqlsh -e 'describe keyspaces' && docker exec $CASS cqlsh -e 'describe keyspaces' | grep -q system_schema"
check "cassandra: env -> cassandra.yaml / rackdc, heap from MAX_HEAP_SIZE/HEAP_NEWSIZE, runs as cassandra" bash -c "
  docker exec $CASS grep -qx 'cluster_name: ece573-prj04' /etc/cassandra/cassandra.yaml &&
  docker exec $CASS grep -qx 'endpoint_snitch: GossipingPropertyFileSnitch' /etc/cassandra/cassandra.yaml &&
  docker exec $CASS grep -q 'seeds: \"$CASS\"' /etc/cassandra/cassandra.yaml &&
  docker exec $CASS grep -qx 'dc= datacenter1' /etc/cassandra/cassandra-rackdc.properties &&
  docker exec $CASS ps -o uid=,args= -C java | grep -q '^ *999 .*-Xms512M -Xmx512M -Xmn128M'"
check "cassandra: cluster name and data center as set (nodetool describecluster)" bash -c \
  "docker exec $CASS nodetool describecluster | grep -q 'Name: ece573-prj04' && docker exec $CASS nodetool status | grep -q '^Datacenter: datacenter1'"
check "cassandra: nodetool drain (the preStop hook) succeeds" docker exec "$CASS" nodetool drain

docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' "$ZK" "$KAFKA" "$CASS" 2>/dev/null | sed 's/^/[smoke] memory: /' >&2
echo "smoke: $PASS passed, $FAIL failed"
[[ "$FAIL" == 0 ]]
