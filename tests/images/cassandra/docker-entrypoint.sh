#!/bin/bash
# Behaves as docker-library/cassandra's docker-entrypoint.sh (4.1):
# - no arguments, or a first argument starting with '-': run `cassandra -f ARGS`;
# - `cassandra` as root: chown to cassandra what it writes (data, logs, conf), re-run as cassandra (gosu);
# - CASSANDRA_LISTEN_ADDRESS (default 'auto' = this container's first non-loopback IPv4 from `ip address`),
#   CASSANDRA_BROADCAST_ADDRESS (default: listen), CASSANDRA_BROADCAST_RPC_ADDRESS (default: broadcast),
#   CASSANDRA_RPC_ADDRESS (default 0.0.0.0), CASSANDRA_SEEDS (default: broadcast; 'cassandra' when
#   CASSANDRA_NAME is set), CASSANDRA_CLUSTER_NAME, CASSANDRA_ENDPOINT_SNITCH, CASSANDRA_NUM_TOKENS,
#   CASSANDRA_START_RPC -> cassandra.yaml; CASSANDRA_DC, CASSANDRA_RACK -> cassandra-rackdc.properties.
set -e

if [ $# -eq 0 ] || [ "${1:0:1}" = - ]; then
	set -- cassandra -f "$@"
fi

if [ "$1" = cassandra ] && [ "$(id -u)" = 0 ]; then
	find /var/lib/cassandra /var/log/cassandra "$CASSANDRA_CONF" ! -user cassandra -exec chown cassandra '{}' +
	exec gosu cassandra "${BASH_SOURCE[0]}" "$@"
fi

first_ip() {
	ip address | awk '$1 == "inet" && $NF != "lo" { sub(/\/.*/, "", $2); print $2; exit }'
}

# Rewrites a file through a temp copy, keeping its inode (a bind-mounted file cannot be replaced).
edit_file() {
	local file="$1" tmp
	shift
	tmp="$(mktemp)"
	sed "$@" "$file" >"$tmp"
	cat "$tmp" >"$file"
	rm -f "$tmp"
}

if [ "$1" = cassandra ]; then
	CASSANDRA_RPC_ADDRESS="${CASSANDRA_RPC_ADDRESS-0.0.0.0}"
	CASSANDRA_LISTEN_ADDRESS="${CASSANDRA_LISTEN_ADDRESS-auto}"
	[ "$CASSANDRA_LISTEN_ADDRESS" != auto ] || CASSANDRA_LISTEN_ADDRESS="$(first_ip)"
	CASSANDRA_BROADCAST_ADDRESS="${CASSANDRA_BROADCAST_ADDRESS-$CASSANDRA_LISTEN_ADDRESS}"
	[ "$CASSANDRA_BROADCAST_ADDRESS" != auto ] || CASSANDRA_BROADCAST_ADDRESS="$(first_ip)"
	CASSANDRA_BROADCAST_RPC_ADDRESS="${CASSANDRA_BROADCAST_RPC_ADDRESS:-$CASSANDRA_BROADCAST_ADDRESS}"
	[ -z "${CASSANDRA_NAME:-}" ] || CASSANDRA_SEEDS="${CASSANDRA_SEEDS:-cassandra}"
	CASSANDRA_SEEDS="${CASSANDRA_SEEDS:-$CASSANDRA_BROADCAST_ADDRESS}"

	edit_file "$CASSANDRA_CONF/cassandra.yaml" -r 's/(- seeds:).*/\1 "'"$CASSANDRA_SEEDS"'"/'

	for key in broadcast_address broadcast_rpc_address cluster_name endpoint_snitch listen_address \
		num_tokens rpc_address start_rpc; do
		var="CASSANDRA_${key^^}"
		if [ -n "${!var:-}" ]; then
			# a commented-out key ("# key:") is switched on too
			edit_file "$CASSANDRA_CONF/cassandra.yaml" -r 's/^(# )?('"$key"':).*/\2 '"${!var}"'/'
		fi
	done

	for key in dc rack; do
		var="CASSANDRA_${key^^}"
		if [ -n "${!var:-}" ]; then
			edit_file "$CASSANDRA_CONF/cassandra-rackdc.properties" -r 's/^('"$key"'=).*/\1 '"${!var}"'/'
		fi
	done
fi

exec "$@"
