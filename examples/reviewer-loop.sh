#!/bin/sh
# A long-lived reviewer that pulls its work instead of being started by a hook: it waits until
# something is in `review`, claims it (exactly one reviewer wins), reviews it while renewing the
# lease, and reports back with its token. Run several side by side; each takes different work.
#   examples/reviewer-loop.sh NAME [REVIEW_COMMAND]     (REVIEW_COMMAND gets the id in $1)
# Stops after one instance with ONCE=1 (for a demo).
set -u
name=${1:?usage: reviewer-loop.sh NAME [REVIEW_COMMAND]}
review=${2:-'echo "reviewing $1"; true'}
while :; do
    # Blocks (no polling) until an instance is claimable, then takes it.
    set -- $(chatflow claim --phase review --as "$name" --ttl 2m --wait) || exit $?
    id=$1 transition=$2 token=$3
    # Renew the lease while the review runs, so a crash of this reviewer frees the work in 2 minutes.
    ( while sleep 60; do chatflow heartbeat "$id" --token "$token" >/dev/null || exit; done ) &
    renew=$!
    if sh -c "$review" reviewer "$id"; then
        data='{"review": "approved"}' to=""
    else
        data='{"review": "changes requested"}' to="--to implement"
    fi
    kill "$renew" 2>/dev/null
    # The token proves the claim; --expect-transition refuses if someone moved it on meanwhile.
    chatflow trigger "$id" --token "$token" --expect-transition "$transition" --data "$data" $to
    [ "${ONCE:-0}" = 1 ] && exit 0
done
