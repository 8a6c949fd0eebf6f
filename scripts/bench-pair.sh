#!/bin/bash
# Two builds of ChatFlow measured side by side, alternated run by run (docs/BENCHMARKS.md):
#   scripts/bench-pair.sh OLD_BIN_DIR NEW_BIN_DIR [OUT.ndjson]
# Each directory holds release builds of chatflow-bench, chatflow and chatflow-watch (for an
# older commit: git worktree add /tmp/old REV && cd /tmp/old && swift build -c release).
# Prints nothing; every figure goes to OUT (default bench-pair.ndjson) with its binary named.
set -euo pipefail
old=$1 new=$2 out=${3:-bench-pair.ndjson}
: > "$out"
run() { "$2/chatflow-bench" run --only "$3" --json 2>/dev/null | sed "s/^{/{\"binary\":\"$1\",/" >> "$out"; }
for _ in 1 2 3 4 5 6; do run old "$old" trigger; run new "$new" trigger; done
for _ in 1 2 3 4; do run old "$old" cli; run new "$new" cli; done
python3 "$(dirname "$0")/cli-wall.py" "$old/chatflow" "$new/chatflow" | sed 's/^{/{"binary":"both",/' >> "$out"
for _ in 1 2 3; do run old "$old" hook_latency; run new "$new" hook_latency; done
run old "$old" catchup; run new "$new" catchup
