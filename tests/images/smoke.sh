#!/usr/bin/env bash
# Smoke test of the stand-in images with plain `docker run` on a user-defined network: what a person
# would check by hand on the official images. Builds them first (fast when up to date).
#
# Usage: tests/images/smoke.sh [--keep] [IMAGE...]   --keep leaves the containers running for a look
#   IMAGE   cassandra, cp-zookeeper, cp-kafka, postgres (default: all four; cp-kafka brings cp-zookeeper)
# Knobs: STREAMSTACK_REGISTRY, STREAMSTACK_CACHE (as build.sh); SMOKE_TIMEOUT (seconds per wait, 240)
# Ends with `N passed, N failed`; exit 0 only if nothing failed.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bad() { printf 'smoke.sh: %s\n' "$*" >&2; exit 2; }
KEEP=0 WANT=()
for arg in "$@"; do
  case "$arg" in
    --keep) KEEP=1 ;;
    cassandra|cp-zookeeper|cp-kafka|postgres) WANT+=("$arg") ;;
    -*) bad "unknown flag '$arg' (allowed: --keep)" ;;
    *) bad "unknown image '$arg' (allowed: cassandra, cp-zookeeper, cp-kafka, postgres)" ;;
  esac
done
((${#WANT[@]})) || WANT=(cassandra cp-zookeeper cp-kafka postgres)
want() { local w; for w in "${WANT[@]}"; do [[ "$w" == "$1" ]] && return 0; done; return 1; }
want cp-kafka && ! want cp-zookeeper && WANT+=(cp-zookeeper)   # the broker needs its ZooKeeper
TIMEOUT="${SMOKE_TIMEOUT:-240}"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || bad "SMOKE_TIMEOUT must be a whole number of seconds, got '$TIMEOUT'"

DOCKER_BIN="$(command -v /usr/bin/docker || command -v docker)"
docker() { "$DOCKER_BIN" "$@"; }
NET=streamstack-smoke
ZK=streamstack-smoke-zookeeper-0 KAFKA=streamstack-smoke-kafka-0 CASS=streamstack-smoke-cassandra-0
PG=streamstack-smoke-postgres-0 PG_VOL=streamstack-smoke-pgdata
PG_TMP=""   # host directories of the postgres checks (initdb.d scripts, a mount with lost+found)
STARTED=()
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
  [[ "$KEEP" == 1 ]] && { log "kept: ${STARTED[*]} on network $NET${PG_TMP:+ (postgres files: $PG_TMP)}"; return; }
  docker rm -f "$ZK" "$KAFKA" "$CASS" "$PG" "$PG-uid999" >/dev/null 2>&1
  docker volume rm "$PG_VOL" >/dev/null 2>&1
  [[ -z "$PG_TMP" ]] || rm -rf "$PG_TMP"
  docker network rm "$NET" >/dev/null 2>&1
}

refs="$(bash "$HERE/build.sh" "${WANT[@]}")" || { log "build.sh failed"; exit 1; }
ref() { sed -n "s/^$1=//p" <<<"$refs"; }
ZK_IMAGE="$(ref cp-zookeeper)" KAFKA_IMAGE="$(ref cp-kafka)" CASS_IMAGE="$(ref cassandra)" PG_IMAGE="$(ref postgres)"

docker rm -f "$ZK" "$KAFKA" "$CASS" "$PG" >/dev/null 2>&1
docker volume rm "$PG_VOL" >/dev/null 2>&1
docker network rm "$NET" >/dev/null 2>&1
trap cleanup EXIT
docker network create "$NET" >/dev/null

# --- the images' fixed facts, as the official images have them ---------------------------------------
inspect() { docker image inspect -f "$2" "$1"; }
want cp-zookeeper && check "cp-zookeeper: user appuser, VOLUMEs data/log/secrets, CMD run" bash -c '
  [ "$(docker image inspect -f "{{.Config.User}} {{json .Config.Volumes}} {{json .Config.Cmd}} {{.Config.WorkingDir}}" '"$ZK_IMAGE"')" = \
    "appuser {\"/etc/zookeeper/secrets\":{},\"/var/lib/zookeeper/data\":{},\"/var/lib/zookeeper/log\":{}} [\"/etc/confluent/docker/run\"] /home/appuser" ]'
want cp-kafka && check "cp-kafka: user appuser, VOLUMEs data/secrets, CMD run" bash -c '
  [ "$(docker image inspect -f "{{.Config.User}} {{json .Config.Volumes}} {{json .Config.Cmd}} {{.Config.WorkingDir}}" '"$KAFKA_IMAGE"')" = \
    "appuser {\"/etc/kafka/secrets\":{},\"/var/lib/kafka/data\":{}} [\"/etc/confluent/docker/run\"] /home/appuser" ]'
want cassandra && check "cassandra: VOLUME /var/lib/cassandra, entrypoint, CMD cassandra -f, runs as root first" bash -c '
  [ "$(docker image inspect -f "{{.Config.User}}|{{json .Config.Volumes}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}" '"$CASS_IMAGE"')" = \
    "|{\"/var/lib/cassandra\":{}} [\"docker-entrypoint.sh\"] [\"cassandra\",\"-f\"]" ]'
want cp-kafka && check "appuser is uid/gid 1000" bash -c '
  [ "$(docker run --rm '"$KAFKA_IMAGE"' id)" = "uid=1000(appuser) gid=1000(appuser) groups=1000(appuser)" ]'
want cassandra && check "cassandra is uid/gid 999" bash -c '
  [ "$(docker run --rm --entrypoint id '"$CASS_IMAGE"' cassandra)" = "uid=999(cassandra) gid=999(cassandra) groups=999(cassandra)" ]'

# --- env handling without a server --------------------------------------------------------------------
if want cp-kafka; then
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
fi
want cp-zookeeper && check "cp-zookeeper: ZOOKEEPER_SERVERS -> server.N, ZOOKEEPER_SERVER_ID -> myid, limits defaulted" bash -c '
  out="$(docker run --rm -e ZOOKEEPER_CLIENT_PORT=2181 -e ZOOKEEPER_SERVER_ID=2 -e "ZOOKEEPER_SERVERS=a:2888:3888;0.0.0.0:2888:3888;c:2888:3888" \
    '"$ZK_IMAGE"' bash -c "/etc/confluent/docker/configure >/dev/null && cat /etc/kafka/zookeeper.properties /var/lib/zookeeper/data/myid")"
  for l in dataDir=/var/lib/zookeeper/data dataLogDir=/var/lib/zookeeper/log clientPort=2181 initLimit=10 syncLimit=5 \
    server.1=a:2888:3888 server.2=0.0.0.0:2888:3888 server.3=c:2888:3888; do grep -qx "$l" <<<"$out" || { echo "missing $l"; exit 1; }; done
  [ "$(tail -n1 <<<"$out")" = 2 ]'

# --- ZooKeeper + one broker, as the program runs them --------------------------------------------------
want cp-zookeeper && STARTED+=("$ZK")
want cp-kafka && STARTED+=("$KAFKA")
want cassandra && STARTED+=("$CASS")
((${#STARTED[@]} == 0)) || log "starting ${STARTED[*]}"
want cp-zookeeper && docker run -d --name "$ZK" --hostname zookeeper-0 --network "$NET" --memory 512m \
  -e ZOOKEEPER_SERVER_ID=1 -e ZOOKEEPER_CLIENT_PORT=2181 -e ZOOKEEPER_TICK_TIME=2000 -e ZOOKEEPER_INIT_LIMIT=10 \
  -e ZOOKEEPER_SYNC_LIMIT=5 -e KAFKA_OPTS=-Dzookeeper.4lw.commands.whitelist=ruok,srvr,mntr -e "KAFKA_HEAP_OPTS=-Xms256m -Xmx256m" \
  "$ZK_IMAGE" >/dev/null
want cp-kafka && docker run -d --name "$KAFKA" --hostname kafka-0 --network "$NET" --memory 1g \
  -e KAFKA_BROKER_ID=0 -e "KAFKA_ZOOKEEPER_CONNECT=$ZK:2181" -e "KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://$KAFKA:9092" \
  -e "KAFKA_HEAP_OPTS=-Xms512m -Xmx512m" -e KAFKA_NUM_PARTITIONS=4 -e KAFKA_DEFAULT_REPLICATION_FACTOR=1 \
  -e KAFKA_MIN_INSYNC_REPLICAS=1 -e KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=1 -e KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR=1 \
  -e KAFKA_TRANSACTION_STATE_LOG_MIN_ISR=1 -e KAFKA_LOG_DIRS=/var/lib/kafka/data "$KAFKA_IMAGE" >/dev/null
want cassandra && docker run -d --name "$CASS" --hostname cassandra-0 --network "$NET" --memory 1g \
  -e MAX_HEAP_SIZE=512M -e HEAP_NEWSIZE=128M -e "CASSANDRA_SEEDS=$CASS" -e CASSANDRA_CLUSTER_NAME=ece573-prj04 \
  -e CASSANDRA_ENDPOINT_SNITCH=GossipingPropertyFileSnitch -e CASSANDRA_DC=datacenter1 -e CASSANDRA_RACK=rack1 \
  "$CASS_IMAGE" >/dev/null

zk4() { docker exec "$ZK" bash -c "exec 3<>/dev/tcp/127.0.0.1/2181 && printf $1 >&3 && grep -q '$2' <&3"; }
if want cp-zookeeper; then
check "zookeeper: answers srvr (Mode: standalone) and ruok, as the readiness/liveness probes ask" \
  bash -c "$(declare -f wait_for zk4 docker); DOCKER_BIN=$DOCKER_BIN; ZK=$ZK; wait_for $TIMEOUT zk4 srvr 'Mode: ' && zk4 ruok imok"
check "zookeeper: the run steps' '===>' lines, as upstream" bash -c \
  "docker logs $ZK 2>&1 | grep -q '^===> Launching zookeeper ... ' && docker logs $ZK 2>&1 | grep -q '^===> Check if /var/lib/zookeeper/log is writable ...'"
check "zookeeper: KAFKA_HEAP_OPTS and KAFKA_OPTS reach the JVM" bash -c \
  "docker exec $ZK ps -o args= -C java | grep -q -- '-Xms256m -Xmx256m .*-Dzookeeper.4lw.commands.whitelist=ruok,srvr,mntr'"
fi
if want cp-kafka; then
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
fi

# --- Cassandra --------------------------------------------------------------------------------------
# the program's readiness probe, verbatim (POD_IP = the container's IP here)
if want cassandra; then
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
fi

# --- PostgreSQL, as the kvs deployment runs it ----------------------------------------------------------
if want postgres; then
PG_TMP="$(mktemp -d /tmp/streamstack-smoke-postgres.XXXXXX)"
chmod 0755 "$PG_TMP"
# initdb.d: a .sql file (psql as POSTGRES_USER into POSTGRES_DB) and a non-executable .sh file (sourced)
mkdir -p "$PG_TMP/initdb.d"
printf '%s\n' "CREATE TABLE smoke (v text NOT NULL);" "INSERT INTO smoke VALUES ('from-initdb');" >"$PG_TMP/initdb.d/10-schema.sql"
printf '%s\n' 'docker_process_sql -c "INSERT INTO smoke VALUES ('"'"'from-sh'"'"')"' >"$PG_TMP/initdb.d/20-more.sh"
chmod 0755 "$PG_TMP/initdb.d"; chmod 0644 "$PG_TMP/initdb.d/"*
PG_ENV=(-e POSTGRES_USER=kvs -e POSTGRES_PASSWORD=smoke-secret -e POSTGRES_DB=kvs -e PGDATA=/var/lib/postgresql/data/pgdata)
pg_run() {  # pg_run: the server on $PG_VOL, PGDATA a subdirectory of the volume (as on a PV with lost+found)
  docker run -d --name "$PG" --hostname postgres-0 --network "$NET" --memory 512m "${PG_ENV[@]}" \
    -v "$PG_VOL:/var/lib/postgresql/data" -v "$PG_TMP/initdb.d:/docker-entrypoint-initdb.d:ro" "$PG_IMAGE" >/dev/null
}
# psql over TCP from another container on the network, with the password (scram-sha-256)
pg_sql() { docker run --rm --network "$NET" -e "PGPASSWORD=${PGPW:-smoke-secret}" "$PG_IMAGE" psql -h "$PG" -U kvs -d kvs -v ON_ERROR_STOP=1 -Atc "$1"; }
pg_ready() { docker exec "$PG" pg_isready -h 127.0.0.1 -p 5432 -U kvs -d kvs; }   # the probe's form

check "postgres: runs as root first, VOLUME PGDATA, entrypoint, CMD postgres, STOPSIGNAL SIGINT, EXPOSE 5432" bash -c '
  [ "$(docker image inspect -f "{{.Config.User}}|{{json .Config.Volumes}} {{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.StopSignal}} {{json .Config.ExposedPorts}}" '"$PG_IMAGE"')" = \
    "|{\"/var/lib/postgresql/data\":{}} [\"docker-entrypoint.sh\"] [\"postgres\"] SIGINT {\"5432/tcp\":{}}" ]'
check "postgres: PGDATA, PG_MAJOR, LANG en_US.utf8, /usr/lib/postgresql/15/bin at the end of PATH" bash -c '
  env="$(docker image inspect -f "{{range .Config.Env}}{{println .}}{{end}}" '"$PG_IMAGE"')"
  for l in PGDATA=/var/lib/postgresql/data PG_MAJOR=15 LANG=en_US.utf8; do grep -qx "$l" <<<"$env" || { echo "missing $l"; exit 1; }; done
  grep -qx "PATH=.*:/usr/lib/postgresql/15/bin" <<<"$env"'
check "postgres is uid/gid 999; pg_isready, psql, initdb, gosu, docker-ensure-initdb.sh on PATH; en_US.utf8 locale" bash -c '
  out="$(docker run --rm --entrypoint bash '"$PG_IMAGE"' -c "id -u postgres; id -g postgres; command -v pg_isready psql initdb postgres gosu docker-ensure-initdb.sh docker-enforce-initdb.sh | wc -l; locale -a | grep -cx en_US.utf8")"
  [ "$out" = "$(printf "999\n999\n7\n1")" ] || { echo "$out"; exit 1; }'
check "postgres refuses an empty POSTGRES_PASSWORD with upstream's error" bash -c '
  out="$(docker run --rm '"$PG_IMAGE"' 2>&1)"; rc=$?
  [ $rc -ne 0 ] && grep -q "^Error: Database is uninitialized and superuser password is not specified.$" <<<"$out" &&
  grep -q "You must specify POSTGRES_PASSWORD to a non-empty value for the" <<<"$out"'
check "postgres: docker-ensure-initdb.sh with POSTGRES_HOST_AUTH_METHOD=trust initialises once, then only notes it" bash -c '
  out="$(docker run --rm -e POSTGRES_HOST_AUTH_METHOD=trust --entrypoint bash '"$PG_IMAGE"' -c \
    "docker-ensure-initdb.sh >/dev/null 2>&1 && tail -n1 \$PGDATA/pg_hba.conf && stat -c %u:%a \$PGDATA && docker-ensure-initdb.sh 2>&1 | tail -n1")"
  [ "$out" = "$(printf "%s\n" "host all all all trust" "999:700" "docker-ensure-initdb.sh: note: database already initialized in '"'"'/var/lib/postgresql/data'"'"'!")" ] || { echo "$out"; exit 1; }'

STARTED+=("$PG")
log "starting $PG"
pg_run
check "postgres: pg_isready over TCP (the probe) answers once initdb is done" \
  bash -c "$(declare -f wait_for pg_ready docker); DOCKER_BIN=$DOCKER_BIN; PG=$PG; wait_for $TIMEOUT pg_ready"
check "postgres: initdb ran as POSTGRES_USER; initdb.d's .sql and .sh ran once in POSTGRES_DB" bash -c "
  $(declare -f pg_sql docker); DOCKER_BIN=$DOCKER_BIN; PG=$PG; PG_IMAGE=$PG_IMAGE; NET=$NET
  [ \"\$(pg_sql 'SELECT current_user, current_database(), string_agg(v, chr(44) ORDER BY v) FROM smoke')\" = 'kvs|kvs|from-initdb,from-sh' ] &&
  docker logs $PG 2>&1 | grep -q '^/usr/local/bin/docker-entrypoint.sh: sourcing /docker-entrypoint-initdb.d/20-more.sh$'"
check "postgres: psql over TCP with the password writes; a wrong password is refused (scram-sha-256)" bash -c "
  $(declare -f pg_sql docker); DOCKER_BIN=$DOCKER_BIN; PG=$PG; PG_IMAGE=$PG_IMAGE; NET=$NET
  [ \"\$(pg_sql \"INSERT INTO smoke VALUES ('written') RETURNING v\" | head -n1)\" = written ] &&
  ! out=\"\$(PGPW=wrong pg_sql 'SELECT 1' 2>&1)\" && grep -q 'password authentication failed for user \"kvs\"' <<<\"\$out\""
check "postgres: pg_hba.conf ends with 'host all all all scram-sha-256', listen_addresses '*', PGDATA 0700 of 999, server uid 999" bash -c "
  docker exec $PG tail -n1 /var/lib/postgresql/data/pgdata/pg_hba.conf | grep -qx 'host all all all scram-sha-256' &&
  docker exec $PG grep -qx \"listen_addresses = '\\*'\" /var/lib/postgresql/data/pgdata/postgresql.conf &&
  [ \"\$(docker exec $PG stat -c %u:%a /var/lib/postgresql/data/pgdata)\" = 999:700 ] &&
  [ \"\$(docker exec $PG ps -o uid= -p 1 | tr -d ' ')\" = 999 ] &&
  [ -z \"\$(docker exec $PG sh -c 'tr \"\\0\" \"\\n\" </proc/1/environ | grep ^POSTGRES_')\" ]"
check "postgres: docker stop (STOPSIGNAL SIGINT) is a fast shutdown, exit code 0" bash -c "
  docker stop -t 60 $PG >/dev/null && [ \"\$(docker inspect -f '{{.State.ExitCode}}' $PG)\" = 0 ] &&
  docker logs $PG 2>&1 | tail -n 20 | grep -q 'received fast shutdown request'"
docker rm -f "$PG" >/dev/null 2>&1
pg_run
check "postgres: a new container on the same volume skips initdb and initdb.d and has the rows" bash -c "
  $(declare -f wait_for pg_ready pg_sql docker); DOCKER_BIN=$DOCKER_BIN; PG=$PG; PG_IMAGE=$PG_IMAGE; NET=$NET
  wait_for $TIMEOUT pg_ready &&
  [ \"\$(pg_sql 'SELECT string_agg(v, chr(44) ORDER BY v) FROM smoke')\" = 'from-initdb,from-sh,written' ] &&
  docker logs $PG 2>&1 | grep -q 'PostgreSQL Database directory appears to contain a database; Skipping initialization' &&
  ! docker logs $PG 2>&1 | grep -qe 'init process complete' -e 'docker-entrypoint-initdb.d'"
# a pod with runAsUser/runAsGroup 999 and fsGroup 999 on an ext4 volume: the mount point is root's, group 999
# (setgid, g+rwx), and holds lost+found. initdb refuses the mount point itself; a subdirectory works.
mkdir -p "$PG_TMP/pv/lost+found"; chmod 0700 "$PG_TMP/pv/lost+found"; chgrp 999 "$PG_TMP/pv"; chmod 2775 "$PG_TMP/pv"
check "postgres as --user 999:999 on a mount with lost+found: PGDATA = the mount point is refused by initdb" bash -c "
  ! out=\"\$(docker run --rm --user 999:999 -e POSTGRES_PASSWORD=x -v $PG_TMP/pv:/var/lib/postgresql/data $PG_IMAGE 2>&1)\" &&
  grep -q 'It contains a lost+found directory' <<<\"\$out\""
check "postgres as --user 999:999 on a mount with lost+found: PGDATA = a subdirectory initialises and serves (no chown)" bash -c "
  $(declare -f wait_for docker); DOCKER_BIN=$DOCKER_BIN
  docker run -d --name $PG-uid999 --user 999:999 -e POSTGRES_PASSWORD=x -e PGDATA=/var/lib/postgresql/data/pgdata \
    -v $PG_TMP/pv:/var/lib/postgresql/data $PG_IMAGE >/dev/null &&
  wait_for $TIMEOUT docker exec $PG-uid999 pg_isready -h 127.0.0.1 -U postgres &&
  [ \"\$(stat -c %u:%a $PG_TMP/pv/pgdata) \$(stat -c %u $PG_TMP/pv/lost+found)\" = '999:700 0' ] &&
  docker exec -e PGPASSWORD=x $PG-uid999 psql -h 127.0.0.1 -U postgres -Atc 'SELECT 1' | grep -qx 1
  rc=\$?; docker rm -f $PG-uid999 >/dev/null 2>&1; exit \$rc"
fi

((${#STARTED[@]} == 0)) || docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' "${STARTED[@]}" 2>/dev/null | sed 's/^/[smoke] memory: /' >&2
echo "smoke: $PASS passed, $FAIL failed"
[[ "$FAIL" == 0 ]]
