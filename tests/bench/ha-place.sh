#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The HA decision core's placement figure, no cluster: one ha_decide() call
# that recovers the VMs of a lost, fenced node (16 nodes, 1,000 VMs; median
# of 50 runs after a warm-up; goal 10 ms). haven-bench-ha-place (`make all`
# builds it) checks that every VM of the lost node was recovered.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/${BUILD:-build}/bin/haven-bench-ha-place

emit() { # name value unit [goal]
    printf '{"bench":"%s","value":%s,"unit":"%s"%s}\n' "$1" "$2" "$3" "${4:+,\"goal\":$4}"
}
field() { # json key
    sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<< "$1"
}

[ -x "$BIN" ] || { echo "bench: $BIN is missing (make all)" >&2; exit 1; }
out=$("$BIN" -n "${HA_PLACE_BENCH_RUNS:-50}")
emit ha.place_1000vm_16node_ms "$(field "$out" median_ms)" ms 10
