#!/usr/bin/env bash
# The main job on a demo: starts chatflow-watch on a fresh state directory with the example
# hooks, starts a workflow and moves it to `testing`; the hooks then run the (demo) test agent
# and reviewer, which advance it to completion. Pass --keep to leave the watcher running.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product chatflow >/dev/null
swift build -c release --product chatflow-watch >/dev/null
bin=$(swift build -c release --show-bin-path)
export PATH="$bin:$PATH"

demo=$(mktemp -d /tmp/chatflow-demo-XXXXXX)
export CHATFLOW_ROOT="$demo/.chatflow"
chatflow init >/dev/null
chatflow hooks install-examples >/dev/null
# The example hooks' settings, as a project would keep them.
cat >>"$CHATFLOW_ROOT/hooks.env" <<'SETTINGS'
CHATFLOW_TEST_COMMAND=echo "running the test agent..."; sleep 1; echo "12 passed"
CHATFLOW_REVIEW_COMMAND=echo "reviewer: looks good"
SETTINGS

echo "demo state directory: $CHATFLOW_ROOT"
chatflow-watch --log-level info 2>"$demo/watch.log" &
watcher=$!
trap 'kill $watcher 2>/dev/null || true' EXIT
tail -f "$demo/watch.log" --pid=$watcher &
for _ in $(seq 100); do grep -q '^watching ' "$demo/watch.log" && break; sleep 0.1; done

id=$(chatflow start --feature demo-login --phases design,implement,testing,review --context '{"ticket": "DEMO-1"}')
chatflow trigger "$id" --data '{"design": "done"}'
chatflow trigger "$id" --data '{"code": "written"}'      # enters testing: the hooks take over

for _ in $(seq 300); do
    [ "$(chatflow status "$id" --json | grep -c '"status": "completed"')" = 1 ] && break
    sleep 0.1
done
echo; echo "== history"; chatflow history "$id"
echo; echo "== hook runs"; chatflow runs "$id"
echo; echo "== audit.log"; cat "$CHATFLOW_ROOT/audit.log"
if [ "${1:-}" = "--keep" ]; then
    echo; echo "watcher still running (pid $watcher) on $CHATFLOW_ROOT; Ctrl-C to stop"
    wait $watcher
fi
