#!/usr/bin/env bash
# Entry point of the postgres:15 stand-in. Written for this repository to behave as the official image's
# docker-entrypoint.sh (docker-library/postgres, MIT licence; 15/bookworm and 15/trixie); it keeps that
# script's function names, so scripts that source it (docker-ensure-initdb.sh, initdb.d *.sh files) find
# what they expect. What it does, as upstream:
# - a first argument starting with '-' means `postgres ARGS`; anything other than `postgres` (or postgres
#   with --help/--version/--describe-config/-V/-?) is exec'd as is;
# - POSTGRES_PASSWORD, POSTGRES_USER (default postgres), POSTGRES_DB (default: the user),
#   POSTGRES_INITDB_ARGS, each also from a file named by the same variable + _FILE (not both);
#   POSTGRES_INITDB_WALDIR, POSTGRES_HOST_AUTH_METHOD (default: postgres' password_encryption,
#   scram-sha-256 in 15); PGDATA may name a subdirectory of a mount, it is created;
# - as root: PGDATA (0700) and /var/run/postgresql (3775) created, what in them is not postgres' is
#   chown'ed to postgres, and the script re-runs itself as postgres (gosu); as any other user (e.g. a
#   pod's runAsUser 999) it does the same without the chown, and a uid missing from /etc/passwd gets one
#   from nss_wrapper for initdb;
# - only when $PGDATA/PG_VERSION is missing or empty: refuse an empty POSTGRES_PASSWORD unless
#   POSTGRES_HOST_AUTH_METHOD=trust (upstream's error text), initdb --username=$POSTGRES_USER with the
#   password, append `host all all all <method>` to pg_hba.conf, start a socket-only server, create
#   POSTGRES_DB unless it exists, run /docker-entrypoint-initdb.d/* (*.sh run if executable, else
#   sourced; *.sql, *.sql.gz, *.sql.xz, *.sql.zst through psql; the rest ignored), stop it (fast);
# - the POSTGRES_* variables are unset, and `postgres` is exec'd (PID 1 when run as the entry point).
set -Eeo pipefail

# file_env VAR [DEFAULT]: export VAR from $VAR, else from the file $VAR_FILE names, else DEFAULT.
file_env() {
	local name="$1" file_name="$1_FILE" value="${2:-}"
	if [ -n "${!name:-}" ] && [ -n "${!file_name:-}" ]; then
		printf >&2 'error: both %s and %s are set (but are exclusive)\n' "$name" "$file_name"
		exit 1
	fi
	if [ -n "${!name:-}" ]; then
		value="${!name}"
	elif [ -n "${!file_name:-}" ]; then
		value="$(<"${!file_name}")"
	fi
	export "$name=$value"
	unset "$file_name"
}

# True when this file is sourced rather than run.
_is_sourced() {
	[ "${BASH_SOURCE[0]}" != "$0" ]
}

# PGDATA, the socket directory and the WAL directory, owned by postgres when running as root.
docker_create_db_directories() {
	local uid
	uid="$(id -u)"
	mkdir -p "$PGDATA"
	# PostgreSQL refuses a data directory readable by others; on some mounts chmod fails: let postgres say so
	chmod 0700 "$PGDATA" || :
	mkdir -p /var/run/postgresql || :
	chmod 3775 /var/run/postgresql || :
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		mkdir -p "$POSTGRES_INITDB_WALDIR"
		if [ "$uid" = 0 ]; then
			find "$POSTGRES_INITDB_WALDIR" ! -user postgres -exec chown postgres {} +
		fi
		chmod 0700 "$POSTGRES_INITDB_WALDIR"
	fi
	if [ "$uid" = 0 ]; then
		find "$PGDATA" /var/run/postgresql ! -user postgres -exec chown postgres {} +
	fi
}

# initdb of the empty PGDATA: superuser $POSTGRES_USER with $POSTGRES_PASSWORD; POSTGRES_INITDB_ARGS
# (shell words) and this function's arguments are passed on.
docker_init_database_dir() {
	local uid gid lib nss=
	uid="$(id -u)"
	if ! getent passwd "$uid" >/dev/null 2>&1; then
		# initdb wants a passwd entry for the current user: lend one through nss_wrapper
		for lib in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so /lib/*/libnss_wrapper.so; do
			[ -s "$lib" ] || continue
			gid="$(id -g)"
			NSS_WRAPPER_PASSWD="$(mktemp)"
			NSS_WRAPPER_GROUP="$(mktemp)"
			printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$uid" "$gid" "$PGDATA" >"$NSS_WRAPPER_PASSWD"
			printf 'postgres:x:%s:\n' "$gid" >"$NSS_WRAPPER_GROUP"
			export LD_PRELOAD="$lib" NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
			nss=1
			break
		done
	fi
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		set -- --waldir "$POSTGRES_INITDB_WALDIR" "$@"
	fi
	# --pwfile reads one line; an empty password still needs its newline
	eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"${POSTGRES_INITDB_ARGS:-}"' "$@"'
	if [ -n "$nss" ]; then
		rm -f "$NSS_WRAPPER_PASSWD" "$NSS_WRAPPER_GROUP"
		unset LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
	fi
}

# Before initdb: a password is required unless every host connection is trusted.
docker_verify_minimum_env() {
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
		cat >&2 <<'EOE'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
       connections without a password. This is *not* recommended.

       See PostgreSQL documentation about "trust":
       https://www.postgresql.org/docs/current/auth-trust.html
EOE
		exit 1
	fi
	if [ "${POSTGRES_HOST_AUTH_METHOD:-}" = trust ]; then
		cat >&2 <<'EOW'
********************************************************************************
WARNING: POSTGRES_HOST_AUTH_METHOD has been set to "trust". This will allow
         anyone with access to the Postgres port to access your database without
         a password, even if POSTGRES_PASSWORD is set.
********************************************************************************
EOW
	fi
}

# Upstream refuses data of an older layout only for 18+ (PGDATA under /var/lib/postgresql/18/docker);
# for 15 there is nothing to find. Kept so that scripts calling it work.
docker_error_old_databases() {
	:
}

# docker_process_init_files FILE...: run initdb.d files by their name and mode.
docker_process_init_files() {
	# `"${psql[@]}"` in sourced scripts, as upstream keeps for older scripts
	psql=(docker_process_sql)
	printf '\n'
	local f
	for f; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then
					printf '%s: running %s\n' "$0" "$f"
					"$f"
				else
					printf '%s: sourcing %s\n' "$0" "$f"
					. "$f"
				fi
				;;
			*.sql) printf '%s: running %s\n' "$0" "$f"; docker_process_sql -f "$f"; printf '\n' ;;
			*.sql.gz) printf '%s: running %s\n' "$0" "$f"; gunzip -c "$f" | docker_process_sql; printf '\n' ;;
			*.sql.xz) printf '%s: running %s\n' "$0" "$f"; xzcat "$f" | docker_process_sql; printf '\n' ;;
			*.sql.zst) printf '%s: running %s\n' "$0" "$f"; zstd -dc "$f" | docker_process_sql; printf '\n' ;;
			*) printf '%s: ignoring %s\n' "$0" "$f" ;;
		esac
		printf '\n'
	done
}

# docker_process_sql [PSQL ARGS...]: psql as $POSTGRES_USER into $POSTGRES_DB over the socket, stopping at
# the first error.
docker_process_sql() {
	local cmd=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
	if [ -n "${POSTGRES_DB:-}" ]; then
		cmd+=(--dbname "$POSTGRES_DB")
	fi
	PGHOST= PGHOSTADDR= "${cmd[@]}" "$@"
}

# CREATE DATABASE $POSTGRES_DB unless it exists (it does when it is "postgres").
docker_setup_db() {
	local found
	found="$(POSTGRES_DB= docker_process_sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only \
		<<<"SELECT 1 FROM pg_database WHERE datname = :'db' ;")"
	if [ -z "$found" ]; then
		POSTGRES_DB= docker_process_sql --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;'
		printf '\n'
	fi
}

# The environment the other functions read; call it first.
docker_setup_env() {
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	: "${POSTGRES_HOST_AUTH_METHOD:=}"
	declare -g DATABASE_ALREADY_EXISTS
	: "${DATABASE_ALREADY_EXISTS:=}"
	declare -ag OLD_DATABASES=()
	# PG_VERSION is what marks an initialised data directory
	if [ -s "$PGDATA/PG_VERSION" ]; then
		DATABASE_ALREADY_EXISTS=true
	fi
}

# pg_setup_hba_conf [postgres] [SERVER ARGS...]: `host all all all METHOD` at the end of pg_hba.conf,
# METHOD = POSTGRES_HOST_AUTH_METHOD or else the server's password_encryption (with these arguments).
pg_setup_hba_conf() {
	if [ "${1:-}" = postgres ]; then
		shift
	fi
	local method
	method="$(postgres -C password_encryption "$@")"
	: "${POSTGRES_HOST_AUTH_METHOD:=$method}"
	{
		printf '\n'
		if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
			printf '# warning trust is enabled for all connections\n'
			printf '# see https://www.postgresql.org/docs/15/auth-trust.html\n'
		fi
		printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD"
	} >>"$PGDATA/pg_hba.conf"
}

# docker_temp_server_start [postgres] [SERVER ARGS...]: a server on the Unix socket only, for the setup.
docker_temp_server_start() {
	if [ "${1:-}" = postgres ]; then
		shift
	fi
	set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
	NOTIFY_SOCKET= PGUSER="${PGUSER:-$POSTGRES_USER}" \
		pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

docker_temp_server_stop() {
	PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
}

# True when the server arguments ask for help or a version (postgres prints and exits: no setup).
_pg_want_help() {
	local arg
	for arg; do
		case "$arg" in
			-'?' | --help | --describe-config | -V | --version) return 0 ;;
		esac
	done
	return 1
}

_main() {
	if [ "${1:0:1}" = - ]; then
		set -- postgres "$@"
	fi

	if [ "$1" = postgres ] && ! _pg_want_help "$@"; then
		docker_setup_env
		docker_create_db_directories
		if [ "$(id -u)" = 0 ]; then
			exec gosu postgres "${BASH_SOURCE[0]}" "$@"
		fi

		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			docker_verify_minimum_env
			docker_error_old_databases
			# fail now, not half-way, if the init directory is unreadable
			ls /docker-entrypoint-initdb.d/ >/dev/null

			docker_init_database_dir
			pg_setup_hba_conf "$@"

			# psql needs it if POSTGRES_INITDB_ARGS made local connections ask for a password
			export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
			docker_temp_server_start "$@"
			docker_setup_db
			docker_process_init_files /docker-entrypoint-initdb.d/*
			docker_temp_server_stop
			unset PGPASSWORD

			printf '\nPostgreSQL init process complete; ready for start up.\n\n'
		else
			printf '\nPostgreSQL Database directory appears to contain a database; Skipping initialization\n\n'
		fi

		unset "${!POSTGRES_@}"
	fi

	exec "$@"
}

if ! _is_sourced; then
	_main "$@"
fi
