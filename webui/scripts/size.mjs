// SPDX-License-Identifier: LGPL-2.1-or-later
// The built UI's size as a browser fetches it (npm run size, after the
// build): gzip level 9 of every file index.html loads at start (itself,
// the application's script and style sheet), and the console module
// apart (it loads only on the console page). Prints one line per file
// and the bench figure ui.bundle_gzip_kib (everything but the console);
// `--json` prints {"ui.bundle_gzip_kib": N, "ui.console_gzip_kib": N}.
// Exit status 1 when the figure is over the goal (250 KiB).

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const DIST = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const GOAL_KIB = 250;

const html = readFileSync(join(DIST, "index.html"), "utf8");
const start = ["index.html",
        ...[...html.matchAll(/<(?:script[^>]*\ssrc|link[^>]*rel="stylesheet"[^>]*\shref)="([^"]+)"/g)].map((m) => m[1])];
const consoleFile = (html.match(/<meta name="haven-console" content="([^"]+)"/) || [])[1];

const gz = (name) => gzipSync(readFileSync(join(DIST, name)), { level: 9 }).length;
const kib = (n) => Math.round((n / 1024) * 10) / 10;

let total = 0;
for (const name of start) {
        const n = gz(name);
        total += n;
        if (!process.argv.includes("--json"))
                console.log(`${name}: gzip ${kib(n)} KiB`);
}
const consoleSize = consoleFile ? gz(consoleFile) : 0;
if (process.argv.includes("--json")) {
        console.log(JSON.stringify({ "ui.bundle_gzip_kib": kib(total), "ui.console_gzip_kib": kib(consoleSize) }));
} else {
        console.log(`${consoleFile} (console, loaded on its page only): gzip ${kib(consoleSize)} KiB`);
        console.log(`ui.bundle_gzip_kib ${kib(total)} (goal ≤ ${GOAL_KIB})`);
}
if (total / 1024 > GOAL_KIB)
        process.exit(1);
