#!/usr/bin/env bash
# Builds and runs the libFuzzer targets: for what reads other processes' files, the strict JSON
# parser and the state decoder; for the write path, a trigger that is accepted reads back equal.
# Usage: scripts/fuzz.sh [SECONDS per target] [json|state|write ...]
# Seeds are Fuzz/corpus/<target>/ (committed); new inputs go to .build-fuzz/corpus-<target>/, and
# a crashing input to .build-fuzz/crash-<target>-*, which the script prints and exits 1 on.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=${*:-json state write}
mkdir -p .build-fuzz
sources=$(find Sources/ChatFlow -name '*.swift' | sort)
status=0
for target in $targets; do
    case $target in
        json) file=Fuzz/FuzzJSON.swift ;; state) file=Fuzz/FuzzState.swift ;; write) file=Fuzz/FuzzWrite.swift ;;
        *) echo "unknown target $target" >&2; exit 2 ;;
    esac
    binary=.build-fuzz/fuzz-$target
    if [ ! -x "$binary" ] || [ -n "$(find $sources "$file" -newer "$binary" | head -1)" ]; then
        # (ld.gold warns about ASan's local symbols; the log keeps that out of the way.)
        swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name ChatFlow -package-name chatflow -swift-version 6 -I Sources/CChatFlowShims \
            $sources "$file" -o "$binary" >".build-fuzz/build-$target.log" 2>&1 || { grep -E "error" ".build-fuzz/build-$target.log" >&2; exit 1; }
    fi
    mkdir -p ".build-fuzz/corpus-$target" "Fuzz/corpus/$target"
    echo "fuzzing $target for $seconds s"
    if ! "$binary" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix=".build-fuzz/crash-$target-" \
        -max_len=65536 ".build-fuzz/corpus-$target" "Fuzz/corpus/$target" 2>".build-fuzz/$target.log"; then
        tail -30 ".build-fuzz/$target.log" >&2
        status=1
    else
        grep -E "stat::number_of_executed_units|stat::new_units_added" ".build-fuzz/$target.log" || true
    fi
done
rm -rf /dev/shm/chatflow-fuzz-*   # the write target's state directories
exit $status
