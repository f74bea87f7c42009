#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The web UI's size as a browser fetches it at start: gzip (level 9) of
# index.html, the application's script and its style sheet; the noVNC
# console module apart (loaded on the console page only). Builds the UI
# first (make webui) when needed.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s webui >&2
node webui/scripts/size.mjs --json | node -e '
let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
  const o = JSON.parse(s);
  console.log(JSON.stringify({ bench: "ui.bundle_gzip_kib", value: o["ui.bundle_gzip_kib"], unit: "KiB", goal: 250 }));
  console.log(JSON.stringify({ bench: "ui.console_gzip_kib", value: o["ui.console_gzip_kib"], unit: "KiB" }));
});'
