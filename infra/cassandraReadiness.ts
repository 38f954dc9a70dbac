/**
 * The Cassandra node's readiness check: a bash script for an exec probe, run inside the cassandra
 * container (bash and coreutils' head, od and timeout; the official image is Ubuntu-based and has them).
 *
 * It asks the node itself, over the CQL native protocol (v4), for its own gossip state:
 * `SELECT status_with_port, status FROM system_views.gossip_info WHERE address = '$POD_IP'` (a virtual
 * table since 4.1). Ready (exit 0) iff the node answers and its status is NORMAL: the same rule as the `UN` in
 * `nodetool status` it replaces (a node always sees itself Up; joining, leaving, moving or drained is not
 * ready, and the native port only opens once the node has joined the ring). nodetool started a JVM per
 * probe, 1-2 s of CPU every period on each node; this is two small requests.
 * Exit 1 with one line saying why not: nothing listening, an error from the server (e.g. authentication
 * required, or a Cassandra older than 4.1 without the table), no gossip row, or the status it has.
 *
 * `POD_IP` (the pod's env) names the node; `waitSeconds` bounds each of the three reads (the READY
 * frame, the RESULT header, its body): the run stays under 3 x waitSeconds plus the parse.
 */
export function cassandraReadyScript(host: string, port: number, waitSeconds = 3): string {
    return `
addr=${host}:${port}
no() { echo "not ready: $*"; exit 1; }
ip=\${POD_IP:-}
[[ $ip =~ ^[0-9]{1,3}(\\.[0-9]{1,3}){3}$ || $ip =~ ^[0-9a-fA-F:]+$ ]] || no "POD_IP is not an IP address: '$ip'"
{ exec 3<>/dev/tcp/${host}/${port}; } 2>/dev/null || no "nothing accepts connections on $addr"
bad() { no "$addr did not answer like a Cassandra node ($*)"; }
# Reads one response frame into op (opcode), n (body length) and b (body bytes, hex).
frame() {
  local h
  h=($(timeout ${waitSeconds} head -c 9 <&3 | od -An -v -tx1))
  (( \${#h[@]} == 9 )) || no "no answer from $addr within ${waitSeconds} s"
  [[ \${h[0]} == 84 ]] || bad "protocol version byte \${h[0]}"
  fl=$((16#\${h[1]})); op=$((16#\${h[4]})); n=$((16#\${h[5]}\${h[6]}\${h[7]}\${h[8]}))
  (( n <= 16 * 1024 * 1024 )) || bad "frame length $n"
  b=(); (( n == 0 )) || b=($(timeout ${waitSeconds} head -c "$n" <&3 | od -An -v -tx1))
  (( \${#b[@]} == n )) || no "$addr did not send its whole answer ($n bytes) within ${waitSeconds} s"
  p=0
  if (( fl & 8 )); then i16; local k m=$v; for ((k = 0; k < m; k++)); do str; done; fi # warnings
  if (( op == 0 )); then i32; code=$v; str; no "$addr answered error $(printf '0x%04x' "$code"): $s"; fi
}
i16() { (( p + 2 <= n )) || bad "short frame"; v=$((16#\${b[p]}\${b[p+1]})); p=$((p + 2)); }
i32() { (( p + 4 <= n )) || bad "short frame"; v=$((16#\${b[p]}\${b[p+1]}\${b[p+2]}\${b[p+3]})); (( v < 2147483648 )) || v=$((v - 4294967296)); p=$((p + 4)); }
text() { s=; (( v <= 0 )) && return; (( p + v <= n )) || bad "short frame"; local k; for ((k = p; k < p + v; k++)); do s+="\\\\x\${b[k]}"; done; printf -v s '%b' "$s"; p=$((p + v)); }
str() { i16; text; }
send() { printf "$1" >&3 2>/dev/null || no "cannot send to $addr"; }
hex32() { printf '\\\\x%02x\\\\x%02x\\\\x%02x\\\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
# STARTUP {CQL_VERSION: 3.0.0}, stream 1.
send '\\x04\\x00\\x00\\x01\\x01\\x00\\x00\\x00\\x16\\x00\\x01\\x00\\x0bCQL_VERSION\\x00\\x053.0.0'
frame
(( op == 2 )) || bad "opcode $op to STARTUP; the probe needs a node without authentication"
# QUERY at ONE with skip_metadata (flags 0x02), stream 2.
q="SELECT status_with_port, status FROM system_views.gossip_info WHERE address = '$ip'"
send "\\\\x04\\\\x00\\\\x00\\\\x02\\\\x07$(hex32 $((\${#q} + 7)))$(hex32 \${#q})$q\\\\x00\\\\x01\\\\x02"
frame
exec 3<&-
(( op == 8 )) || bad "opcode $op to QUERY"
i32; (( v == 2 )) || bad "result kind $v, not rows"
i32; mf=$v; i32; cols=$v
(( mf & 2 )) && { i32; text; }
if (( !(mf & 4) )); then
  (( mf & 1 )) && { str; str; }
  for ((c = 0; c < cols; c++)); do (( mf & 1 )) || { str; str; }; str; i16; done
fi
i32; rows=$v
(( rows > 0 )) || no "$ip is not in its own gossip state yet"
# STATUS_WITH_PORT is what 4.x nodes act on; STATUS is the pre-4.0 copy they still gossip.
i32; text; status=$s; i32; text; [[ -n $status ]] || status=$s
[[ $status == NORMAL* ]] || no "node $ip is not NORMAL in the ring: gossip status '\${status%%,*}'"
echo "ready: node $ip is NORMAL in the ring"
`.trimStart();
}
