#!/usr/bin/env bash
# Lab figures: time for `haven-lab up 3` and `down`, and how long the
# survivors' corosync membership keeps a node after its power cut (token
# 1000 ms; corosync documents about 2.2 x the effective token, which is
# token + (nodes - 2) x token_coefficient = 1650 ms for three nodes).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB=$ROOT/tests/lab/haven-lab
TRIALS=${LAB_BENCH_TRIALS:-3}

now_ns() { date +%s%N; }
emit() { # name value unit [goal]
    printf '{"bench":"%s","value":%s,"unit":"%s"%s}\n' "$1" "$2" "$3" "${4:+,\"goal\":$4}"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

trap '"$LAB" down > /dev/null 2>&1 || true' EXIT
"$LAB" down > /dev/null 2>&1

t0=$(now_ns)
"$LAB" up 3 >&2
t1=$(now_ns)
emit lab.up_s "$(awk -v d=$((t1 - t0)) 'BEGIN {printf "%.2f", d / 1e9}')" s

"$LAB" corosync --token 1000 >&2
"$LAB" wait-quorate 1 2 3 --timeout 60
dir=$(sed -n 's/.*"name":"node3","index":3,"address":"[^"]*","netns":"[^"]*","dir":"\([^"]*\)".*/\1/p' <(
    "$LAB" status --json))

samples=()
for trial in $(seq "$TRIALS"); do
    # Poll inside node1 (no nsenter per sample): print the time at which
    # node3 is no longer in node1's membership.
    "$LAB" exec 1 sh -c 'while corosync-quorumtool -l 2>/dev/null | grep -qw node3; do :; done; date +%s%N' \
        > /tmp/haven-bench-loss.$$ &
    watcher=$!
    sleep 1
    "$LAB" power 3 off
    wait "$watcher"
    gone=$(cat /tmp/haven-bench-loss.$$)
    cut=$(cat "$dir/power-cut")
    ms=$(((gone - cut) / 1000000))
    echo "bench: trial $trial: node3 left the membership $ms ms after the power cut" >&2
    samples+=("$ms")
    "$LAB" power 3 on
    "$LAB" wait-quorate 1 2 3 --timeout 60
done
rm -f /tmp/haven-bench-loss.$$
emit lab.membership_loss_ms "$(printf '%s\n' "${samples[@]}" | median)" ms 3630

t0=$(now_ns)
"$LAB" down
t1=$(now_ns)
trap - EXIT
emit lab.down_s "$(awk -v d=$((t1 - t0)) 'BEGIN {printf "%.2f", d / 1e9}')" s
