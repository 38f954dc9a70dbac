# Sourced by bin/cassandra. Stand-in for Apache Cassandra 4.1's conf/cassandra-env.sh: the heap from
# MAX_HEAP_SIZE / HEAP_NEWSIZE (set both or neither; neither = computed from the machine's memory and
# cores, as upstream), young generation only with CMS, local-only JMX on $JMX_PORT, the jamm agent.

calculate_heap_sizes() {
    local system_memory_in_mb system_cpu_cores half quarter max_sensible_yg desired_yg
    system_memory_in_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
    system_cpu_cores=$(grep -c '^processor' /proc/cpuinfo)
    [ "$system_cpu_cores" -ge 1 ] || system_cpu_cores=1
    # max(min(1/2 ram, 1024MB), min(1/4 ram, 8GB))
    half=$((system_memory_in_mb / 2)); [ "$half" -le 1024 ] || half=1024
    quarter=$((system_memory_in_mb / 4)); [ "$quarter" -le 8192 ] || quarter=8192
    [ "$half" -gt "$quarter" ] && max_heap_size_in_mb=$half || max_heap_size_in_mb=$quarter
    MAX_HEAP_SIZE="${max_heap_size_in_mb}M"
    # young gen: min(100MB per core, 1/4 heap)
    max_sensible_yg=$((100 * system_cpu_cores))
    desired_yg=$((max_heap_size_in_mb / 4))
    [ "$desired_yg" -gt "$max_sensible_yg" ] && HEAP_NEWSIZE="${max_sensible_yg}M" || HEAP_NEWSIZE="${desired_yg}M"
}

case " $JVM_OPTS " in *" -XX:+UseG1GC "*) USING_G1=1 ;; *) USING_G1=0 ;; esac

if [ -z "${MAX_HEAP_SIZE:-}" ] && { [ -z "${HEAP_NEWSIZE:-}" ] || [ "$USING_G1" = 1 ]; }; then
    calculate_heap_sizes
elif [ -z "${MAX_HEAP_SIZE:-}" ] || { [ -z "${HEAP_NEWSIZE:-}" ] && [ "$USING_G1" = 0 ]; }; then
    echo "please set or unset MAX_HEAP_SIZE and HEAP_NEWSIZE in pairs when using CMS GC (see cassandra-env.sh)"
    exit 1
fi

case " $JVM_OPTS " in *" -Xmx"*) ;; *) JVM_OPTS="$JVM_OPTS -Xms${MAX_HEAP_SIZE} -Xmx${MAX_HEAP_SIZE}" ;; esac
if [ "$USING_G1" = 0 ]; then
    case " $JVM_OPTS " in *" -Xmn"*) ;; *) JVM_OPTS="$JVM_OPTS -Xmn${HEAP_NEWSIZE}" ;; esac
fi

# stop the node on OutOfMemoryError rather than run on with a broken heap
JVM_OPTS="$JVM_OPTS -XX:+CrashOnOutOfMemoryError"

# jamm measures object sizes for memtable accounting
JVM_OPTS="$JVM_OPTS -javaagent:$CASSANDRA_HOME/lib/jamm-0.3.2.jar"

# JMX: local connections only (nodetool in the same container), no authentication
JMX_PORT="7199"
LOCAL_JMX="${LOCAL_JMX:-yes}"
if [ "$LOCAL_JMX" = yes ]; then
    JVM_OPTS="$JVM_OPTS -Dcassandra.jmx.local.port=$JMX_PORT"
else
    JVM_OPTS="$JVM_OPTS -Dcassandra.jmx.remote.port=$JMX_PORT -Dcom.sun.management.jmxremote.rmi.port=$JMX_PORT -Dcom.sun.management.jmxremote.authenticate=false -Dcom.sun.management.jmxremote.ssl=false"
fi

JVM_OPTS="$JVM_OPTS ${JVM_EXTRA_OPTS:-}"
