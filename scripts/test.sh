#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test (real processes, files and inotify).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
# One test at a time: on 2 cores the tests that block on child processes (browser, MCP client,
# command runs) starved the in-process ones' awaits in a parallel run (timeouts after 10–30 s,
# seen in this session); serial, the whole run takes about a minute.
swift test --skip-build --no-parallel
