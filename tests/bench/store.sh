#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Store figures on this machine's disk, no cluster: the time store_apply
# takes for a one-row insert (with its audit row and checksum; goal 150 us)
# and one-row transactions per second in batches of 64 (haven-bench-store;
# `make all` builds it). STORE_BENCH_TXS sets the number of transactions.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/${BUILD:-build}/bin/haven-bench-store

emit() { # name value unit [goal]
    printf '{"bench":"%s","value":%s,"unit":"%s"%s}\n' "$1" "$2" "$3" "${4:+,\"goal\":$4}"
}
field() { # json key
    sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<< "$1"
}

[ -x "$BIN" ] || { echo "bench: $BIN is missing (make all)" >&2; exit 1; }
out=$("$BIN" -n "${STORE_BENCH_TXS:-5000}")
emit domain.store_apply_us "$(field "$out" apply_p50_us)" us 150
emit domain.store_batch64_tps "$(field "$out" batch64_tps)" tx/s
