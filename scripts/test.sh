#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test (real processes, files and inotify).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
# One test at a time: on 2 cores the tests that block on child processes (browser, MCP client,
# command runs) starve the in-process ones' awaits in a parallel run (timeouts after 10–30 s);
# serial, the whole run takes about four to five minutes.
#
# The PostgreSQL store's tests need a server: unless $CHATFLOW_TEST_POSTGRES names one, a
# throwaway cluster on a free port, stopped and removed on exit.
if [ -z "${CHATFLOW_TEST_POSTGRES:-}" ]; then
    cluster=$(mktemp -d /tmp/chatflow-pg-XXXXXX)
    chmod 755 "$cluster"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    trap 'scripts/pg-cluster.sh stop "$cluster/data" || true; rm -rf "$cluster"' EXIT
    CHATFLOW_TEST_POSTGRES=$(scripts/pg-cluster.sh start "$cluster/data" "$port")
    # The restart test cuts every connection mid-run.
    CHATFLOW_TEST_POSTGRES_RESTART="$PWD/scripts/pg-cluster.sh restart $cluster/data"
    # An outage of a chosen length: stop, then start again on the same port.
    CHATFLOW_TEST_POSTGRES_STOP="$PWD/scripts/pg-cluster.sh stop $cluster/data"
    CHATFLOW_TEST_POSTGRES_START="$PWD/scripts/pg-cluster.sh start $cluster/data $port"
    export CHATFLOW_TEST_POSTGRES CHATFLOW_TEST_POSTGRES_RESTART CHATFLOW_TEST_POSTGRES_STOP CHATFLOW_TEST_POSTGRES_START
fi
swift test --skip-build --no-parallel
