#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and the benchmark (Debian's postgresql 15).
#   scripts/pg-cluster.sh start DIR PORT   creates DIR (as the postgres user when run as root),
#                                          starts the server on 127.0.0.1:PORT, prints the URL
#   scripts/pg-cluster.sh stop DIR         stops it (DIR is left for the caller to remove)
#   scripts/pg-cluster.sh restart DIR      restarts it (every connection is cut)
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "pg-cluster: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 3; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "${1:-}" in
start)
    dir=$2 port=$3
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        as_owner "$bin/initdb" -D "$dir" -A trust -U postgres --no-sync >"$dir.initdb.log" 2>&1 \
            || { cat "$dir.initdb.log" >&2; exit 1; }
    fi
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c max_connections=200" -w start >/dev/null
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    as_owner "$bin/pg_ctl" -D "$2" -m fast -w stop >/dev/null
    ;;
restart)
    # Every connection is cut (the tests' database restart); the port and data stay.
    as_owner "$bin/pg_ctl" -D "$2" -l "$2/server.log" -m fast -w restart >/dev/null 2>&1 </dev/null
    ;;
*) echo "usage: pg-cluster.sh start DIR PORT | stop DIR | restart DIR" >&2; exit 2 ;;
esac
