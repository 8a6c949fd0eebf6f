#!/usr/bin/env bash
# Builds self-contained release binaries (the Swift runtime linked statically, so they run
# without the toolchain) and installs chatflow, chatflow-watch, chatflow-mcp, chatflow-ui, chatflow-pg and
# chatflow-watch-pg into PREFIX/bin.
# Usage: scripts/install.sh [--prefix DIR]   (default ~/.local)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="$HOME/.local"
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
scripts/setup.sh
# The MCP SDK uses Foundation's networking, which a static Swift runtime links against libcurl.
if ! dpkg -s libcurl4-openssl-dev >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libcurl4-openssl-dev >/dev/null
fi
# A separate build folder: the static and the dynamic builds do not overwrite each other.
swift build -c release --static-swift-stdlib --scratch-path .build-static --product chatflow >/dev/null
swift build -c release --static-swift-stdlib --scratch-path .build-static --product chatflow-watch >/dev/null
swift build -c release --static-swift-stdlib --scratch-path .build-static --product chatflow-mcp >/dev/null
swift build -c release --static-swift-stdlib --scratch-path .build-static --product chatflow-ui >/dev/null
swift build -c release --static-swift-stdlib --scratch-path .build-static --product chatflow-pg >/dev/null
swift build -c release --static-swift-stdlib --scratch-path .build-static --product chatflow-watch-pg >/dev/null
bin=$(swift build -c release --static-swift-stdlib --scratch-path .build-static --show-bin-path)
mkdir -p "$prefix/bin"
for tool in chatflow chatflow-watch chatflow-mcp chatflow-ui chatflow-pg chatflow-watch-pg; do
    install -m 0755 "$bin/$tool" "$prefix/bin/$tool.new"
    mv -f "$prefix/bin/$tool.new" "$prefix/bin/$tool"
done
echo "installed chatflow, chatflow-watch, chatflow-mcp, chatflow-ui, chatflow-pg and chatflow-watch-pg $("$prefix/bin/chatflow" --version) in $prefix/bin"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "add it to PATH: export PATH=\"$prefix/bin:\$PATH\"" ;; esac
