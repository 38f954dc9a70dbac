#!/usr/bin/env bash
# docker-ensure-initdb.sh / docker-enforce-initdb.sh of the postgres:15 stand-in, as upstream's
# (docker-library/postgres): the entry point's initialisation without starting the server afterwards.
#   docker-ensure-initdb.sh   initialise PGDATA if it is empty, else say so and exit 0 (e.g. a
#                             Kubernetes init container)
#   docker-enforce-initdb.sh  initialise PGDATA, and exit 1 if it already held a database
# Arguments are server arguments, as for the entry point.
set -Eeuo pipefail

source /usr/local/bin/docker-entrypoint.sh

if [ "$#" -eq 0 ] || [ "$1" != postgres ]; then
	set -- postgres "$@"
fi

docker_setup_env
docker_create_db_directories
if [ "$(id -u)" = 0 ]; then
	exec setpriv --reuid=postgres --regid=postgres --clear-groups "${BASH_SOURCE[0]}" "$@"
fi

self="$(basename "$0")"
if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
	docker_verify_minimum_env
	docker_error_old_databases
	ls /docker-entrypoint-initdb.d/ >/dev/null
	docker_init_database_dir
	pg_setup_hba_conf "$@"
	export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
	docker_temp_server_start "$@"
	docker_setup_db
	docker_process_init_files /docker-entrypoint-initdb.d/*
	docker_temp_server_stop
	unset PGPASSWORD
else
	case "$self" in
		docker-ensure-initdb.sh)
			printf >&2 "%s: note: database already initialized in '%s'!\n" "$self" "$PGDATA"
			exit 0
			;;
		docker-enforce-initdb.sh)
			printf >&2 "%s: error: (unexpected) database found in '%s'!\n" "$self" "$PGDATA"
			exit 1
			;;
		*)
			printf >&2 '%s: error: unknown file name: %s\n' "$self" "$self"
			exit 99
			;;
	esac
fi
