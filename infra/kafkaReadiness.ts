/**
 * The Kafka broker's readiness check: a bash script for an exec probe, run inside cp-kafka (UBI 8 minimal:
 * bash and coreutils' head, od and timeout, nothing else; no nc, no JVM tool, which would take seconds).
 *
 * It sends one Metadata v1 request for all topics to the broker's own listener and answers from the
 * broker's own view of the cluster: Ready iff the broker is registered (among the brokers it lists) and
 * in the ISR of every partition it hosts that has a leader. So a rolling change moves on only after this
 * broker caught up, and never takes a partition's last in-sync copy away from it. Leaderless partitions
 * are skipped: their leader is a broker that is down, they cannot be caught up from anyone, and waiting
 * for them would keep a broker NotReady until the others are back, a deadlock when two of three are lost.
 * Exit 0 when ready, 1 with one line saying why not (not registered, the partitions it lags in, or no
 * proper answer).
 *
 * `KAFKA_BROKER_ID` (the pod's env) names the broker. `waitSeconds` bounds each of the two reads
 * (the length prefix, then the body): the whole run stays under 2 x waitSeconds plus the parse.
 */
export function kafkaReadyScript(port: number, waitSeconds = 2): string {
    return `
addr=127.0.0.1:${port}
no() { echo "not ready: $*"; exit 1; }
id=\${KAFKA_BROKER_ID:-}
[[ $id =~ ^[0-9]+$ ]] || no "KAFKA_BROKER_ID is not a broker id: '$id'"
id=$((10#$id))
{ exec 3<>/dev/tcp/127.0.0.1/${port}; } 2>/dev/null || no "nothing accepts connections on $addr"
# Metadata v1: size 19, api key 3, version 1, correlation id "SRDY", client id "ready", topics null (all).
printf '\\x00\\x00\\x00\\x13\\x00\\x03\\x00\\x01SRDY\\x00\\x05ready\\xff\\xff\\xff\\xff' >&3 2>/dev/null || no "cannot send to $addr"
read -r l0 l1 l2 l3 < <(timeout ${waitSeconds} head -c 4 <&3 | od -An -v -tu1)
[[ -n $l3 ]] || no "no answer from $addr within ${waitSeconds} s"
n=$(( (l0 << 24) | (l1 << 16) | (l2 << 8) | l3 ))
(( n >= 16 && n <= 64 * 1024 * 1024 )) || no "$addr did not answer like a Kafka broker (frame length $n)"
b=($(timeout ${waitSeconds} head -c "$n" <&3 | od -An -v -tx1))
exec 3<&-
(( \${#b[@]} == n )) || no "$addr did not send its whole answer ($n bytes) within ${waitSeconds} s"
bad() { no "$addr did not answer like a Kafka broker (bad Metadata v1 response at byte $p of $n)"; }
p=0
i16() { (( p + 2 <= n )) || bad; v=$((16#\${b[p]}\${b[p+1]})); (( v < 32768 )) || v=$((v - 65536)); p=$((p + 2)); }
i32() { (( p + 4 <= n )) || bad; v=$((16#\${b[p]}\${b[p+1]}\${b[p+2]}\${b[p+3]})); (( v < 2147483648 )) || v=$((v - 4294967296)); p=$((p + 4)); }
count() { i32; (( v >= 0 && v <= n )) || bad; }
str() { i16; s=; (( v <= 0 )) && return; (( p + v <= n )) || bad; local k; for ((k = p; k < p + v; k++)); do s+="\\\\x\${b[k]}"; done; printf -v s '%b' "$s"; p=$((p + v)); }
ints() { count; local k m=$v; list=" "; for ((k = 0; k < m; k++)); do i32; list+="$v "; done; }
i32; [[ $v == $((16#53524459)) ]] || bad
count; nb=$v; brokers=; registered=0
for ((j = 0; j < nb; j++)); do
  i32; brokers+=" $v"; [[ $v == "$id" ]] && registered=1
  str; i32; str
done
i32
(( registered )) || no "broker $id is not registered: its own metadata lists brokers [\${brokers# }]"
count; nt=$v; hosted=0; skipped=0; behind=()
for ((t = 0; t < nt; t++)); do
  i16; str; topic=$s; p=$((p + 1))
  count; np=$v
  for ((q = 0; q < np; q++)); do
    i16; i32; part=$v; i32; leader=$v
    ints; replicas=$list; ints; isr=$list
    [[ $replicas == *" $id "* ]] || continue
    hosted=$((hosted + 1))
    if (( leader == -1 )); then skipped=$((skipped + 1))
    elif [[ $isr != *" $id "* ]]; then behind+=("$topic-$part"); fi
  done
done
(( p == n )) || bad
if (( \${#behind[@]} )); then
  more=; (( \${#behind[@]} > 5 )) && more=" and $((\${#behind[@]} - 5)) more"
  no "broker $id is not in the ISR of \${#behind[@]} of its $hosted partitions: \${behind[*]:0:5}$more"
fi
echo "ready: broker $id is registered and in the ISR of its $((hosted - skipped)) partitions that have a leader ($skipped leaderless skipped)"
`.trimStart();
}
