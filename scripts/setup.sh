#!/usr/bin/env bash
# Installs the system packages ChatFlow builds against (Debian): libinotifytools for the
# watcher, inotify-tools for the benchmark's shell-loop comparison, python3 for the interop tests.
set -euo pipefail
missing=()
# libsqlite3-dev: the benchmark's peer for the write path. strace: the power-loss check records
# a trigger's system calls (scripts/crash-check.py). chromium and chromium-driver: the
# web view's tests drive a real (headless) browser. postgresql: the PostgreSQL store's tests run
# on a throwaway cluster (scripts/pg-cluster.sh). curl: the torture suite's hostile HTTP client.
for package in libinotifytools0-dev inotify-tools libsqlite3-dev strace chromium chromium-driver postgresql curl; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
# The tests' other writer (Tests/interop/writer.py) and the MCP client (the `mcp` package) are Python.
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The MCP tests' client, written by others (the Python SDK from PyPI), in a virtual environment;
venv=.venv-test
# selenium drives chromium for the web view's tests.
if ! "$venv/bin/python" -c 'import mcp, selenium' >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "mcp>=2.3,<2.4" "selenium>=4.20,<5"
fi
