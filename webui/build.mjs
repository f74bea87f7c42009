// SPDX-License-Identifier: LGPL-2.1-or-later
// The web UI's build: src/ → dist/, offline (after `npm ci` nothing is
// fetched). Two bundles: the application (app-HASH.js + app-HASH.css, a
// classic script) and the VNC console (console-HASH.js, an ES module that
// the application imports only on the console page: noVNC stays out of
// the main bundle). Names carry a content hash (hex, so haven-httpd caches
// them forever); index.html does not. Every text file also gets FILE.gz,
// which haven-httpd serves to clients that take gzip. The output depends
// only on the sources and the locked packages: two builds are identical.
//
//   node build.mjs            build into dist/
//   node build.mjs --dev      without minifying (readable output)

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const ROOT = dirname(fileURLToPath(import.meta.url));
const SRC = join(ROOT, "src");
const DIST = join(ROOT, "dist");
const DEV = process.argv.includes("--dev");
// Browsers of the last years (Debian 12's Chromium and Firefox ESR, Safari
// on tablets), ES2021 and the CSS they know; top-level await (noVNC) too.
const TARGET = ["chrome100", "firefox102", "safari15"];

/* ==== Naming ==== */

// A content hash as haven-httpd recognizes one: 12 hex digits (at least one
// of them a decimal digit, or it would be taken for a word).
function contentHash(bytes) {
        const hex = createHash("sha256").update(bytes).digest("hex");
        let n = 12;
        while (!/[0-9]/.test(hex.slice(0, n)))
                n++;
        return hex.slice(0, n);
}

// One esbuild output (code and its map, both bytes) under a hashed name:
// returns {name, files: [[name, bytes]...]} with the map linked.
function hashed(base, ext, code, map) {
        const name = `${base}-${contentHash(code)}.${ext}`;
        const comment = ext === "css"
                ? `\n/*# sourceMappingURL=${name}.map */\n`
                : `\n//# sourceMappingURL=${name}.map\n`;
        const mapObject = JSON.parse(Buffer.from(map).toString("utf8"));
        mapObject.file = name;
        return {
                name,
                files: [
                        [name, Buffer.concat([Buffer.from(code), Buffer.from(comment)])],
                        [`${name}.map`, Buffer.from(JSON.stringify(mapObject))],
                ],
        };
}

// Splits esbuild's in-memory outputs into {js, jsMap, css, cssMap}.
function outputsByKind(result) {
        const kinds = {};
        for (const f of result.outputFiles) {
                const p = f.path;
                if (p.endsWith(".js.map")) kinds.jsMap = f.contents;
                else if (p.endsWith(".css.map")) kinds.cssMap = f.contents;
                else if (p.endsWith(".js")) kinds.js = f.contents;
                else if (p.endsWith(".css")) kinds.css = f.contents;
                else throw new Error(`unexpected output ${p}`);
        }
        return kinds;
}

const common = {
        bundle: true,
        write: false,
        outdir: DIST,
        minify: !DEV,
        sourcemap: "external",
        sourcesContent: true,
        target: TARGET,
        legalComments: "none",
        logLevel: "warning",
        charset: "utf8",
        absWorkingDir: ROOT,
};

/* ==== Bundles ==== */

// The console: noVNC and the glue, an ES module of its own (noVNC uses
// top-level await, so it must be a module).
async function buildConsole() {
        const result = await esbuild.build({
                ...common,
                entryPoints: { console: join(SRC, "console", "vnc.js") },
                format: "esm",
                splitting: false,
        });
        const out = outputsByKind(result);
        return hashed("console", "js", out.js, out.jsMap);
}

// The application: Preact, uPlot, every page; a classic script (deferred),
// its CSS beside it. It finds the console's file through index.html.
async function buildApp() {
        const result = await esbuild.build({
                ...common,
                entryPoints: { app: join(SRC, "main.jsx") },
                format: "iife",
                jsx: "automatic",
                jsxImportSource: "preact",
                loader: { ".json": "json" },
                define: { HAVEN_DEV: JSON.stringify(DEV) },
                metafile: true,
        });
        const out = outputsByKind(result);
        return {
                js: hashed("app", "js", out.js, out.jsMap),
                css: hashed("app", "css", out.css, out.cssMap),
                metafile: result.metafile,
        };
}

/* ==== Output ==== */

function writeOut(files) {
        rmSync(DIST, { recursive: true, force: true });
        mkdirSync(DIST, { recursive: true });
        for (const [name, bytes] of files) {
                writeFileSync(join(DIST, name), bytes);
                if (/\.(js|css|html|svg)$/.test(name)) {
                        // Node's gzip header carries no time and no name:
                        // the same bytes every build.
                        writeFileSync(join(DIST, `${name}.gz`),
                                gzipSync(bytes, { level: 9 }));
                }
        }
}

async function main() {
        const vnc = await buildConsole();
        const app = await buildApp();
        const html = readFileSync(join(SRC, "index.html"), "utf8")
                .replace("@CONSOLE_JS@", vnc.name)
                .replace("@APP_CSS@", app.css.name)
                .replace("@APP_JS@", app.js.name);
        writeOut([
                ...vnc.files,
                ...app.js.files,
                ...app.css.files,
                ["index.html", Buffer.from(html)],
                ["favicon.svg", readFileSync(join(SRC, "favicon.svg"))],
        ]);
        if (process.argv.includes("--analyze"))
                console.log(await esbuild.analyzeMetafile(app.metafile));
        for (const name of [app.js.name, app.css.name, vnc.name]) {
                const bytes = readFileSync(join(DIST, name));
                const gz = gzipSync(bytes, { level: 9 }).length;
                console.log(`${name}: ${(bytes.length / 1024).toFixed(1)} KiB, ` +
                        `gzip ${(gz / 1024).toFixed(1)} KiB`);
        }
}

main().catch((e) => {
        console.error(e.message || e);
        process.exit(1);
});
