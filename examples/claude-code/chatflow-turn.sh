#!/bin/sh
# Claude Code hooks that tell a session whether work waits for its role (a phase).
#   chatflow-turn.sh start PHASE [NAME]   SessionStart: prints what is claimable in PHASE
#                                         (Claude Code adds a SessionStart hook's stdout to the context)
#   chatflow-turn.sh stop PHASE [NAME]    Stop: while something in PHASE is claimable, answers
#                                         {"decision": "block", "reason": …} so the session takes
#                                         the next piece instead of stopping; once it has been
#                                         kept going by this hook (stop_hook_active), it lets it stop
# The session claims and reports back through the chatflow MCP server (claim, trigger) or the
# chatflow command. Register both in .claude/settings.json (examples/claude-code/settings.json).
set -u
mode=${1:?usage: chatflow-turn.sh start|stop PHASE [NAME]}
phase=${2:?usage: chatflow-turn.sh start|stop PHASE [NAME]}
name=${3:-claude-$phase}
input=$(cat)   # the hook's JSON on stdin
waiting=$(chatflow list --claimable --phase "$phase") || exit 0   # no state directory: say nothing
count=$(printf '%s' "$waiting" | grep -c .)
case $mode in
start)
    if [ "$count" -eq 0 ]; then
        echo "ChatFlow: nothing is waiting in phase $phase."
    else
        echo "ChatFlow: $count instance(s) wait in phase $phase for you ($name):"
        printf '%s\n' "$waiting"
        echo "Take the oldest with the chatflow MCP tool claim (phase: \"$phase\", as: \"$name\"), do the work, then call trigger with its id, expect_transition and token."
    fi
    ;;
stop)
    # Kept going once already: let the session stop, so it cannot loop for ever.
    printf '%s' "$input" | grep -q '"stop_hook_active" *: *true' && exit 0
    [ "$count" -eq 0 ] && exit 0
    printf '{"decision": "block", "reason": "%s instance(s) still wait in phase %s: claim the next one with claim (phase: \\"%s\\", as: \\"%s\\") and work it."}\n' \
        "$count" "$phase" "$phase" "$name"
    ;;
*)
    echo "chatflow-turn.sh: unknown mode $mode (start or stop)" >&2
    exit 2
    ;;
esac
