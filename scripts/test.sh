#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test (real processes, files and inotify).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
swift test --skip-build
