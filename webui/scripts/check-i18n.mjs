// SPDX-License-Identifier: LGPL-2.1-or-later
// Checks the translations and the sources (npm run check-i18n):
//  - en.json and de.json have the same keys, no empty text, the same
//    {placeholders};
//  - a German text equal to the English one is listed in identical.json
//    (words that are the same in both: "Status", "CPU"...), so an
//    untranslated copy does not slip through;
//  - every t("key") / tn("key", n) of the sources exists (tn: key.one and
//    key.other); a key built at run time (t(`vm.state.${s}`)) must have at
//    least one key under its fixed prefix;
//  - no visible text is left unwrapped: JSX text with a letter, a string
//    with a letter as a JSX child, or in title, placeholder, alt, label,
//    aria-label, aria-description, aria-roledescription, aria-valuetext.
// Keys that nothing uses are listed as a warning.
// Exit status 1 when anything is wrong. `--list-missing` prints the keys
// the sources use that en.json lacks, as JSON (a help while writing).

import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "@babel/parser";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SRC = join(ROOT, "src");
const LOCALES = join(SRC, "locales");
const LANGS = ["en", "de"];
const TEXT_ATTRIBUTES = new Set(["title", "placeholder", "alt", "label", "aria-label", "aria-description",
        "aria-roledescription", "aria-valuetext"]);
const LETTER = /\p{L}/u;

const errors = [];
const warnings = [];
const error = (file, node, text) => errors.push(`${file}:${node ? node.loc.start.line : 0}: ${text}`);

/* ==== Translations ==== */

const texts = {};
for (const lang of LANGS)
        texts[lang] = JSON.parse(readFileSync(join(LOCALES, `${lang}.json`), "utf8"));
const identical = new Set(JSON.parse(readFileSync(join(LOCALES, "identical.json"), "utf8")));

const placeholders = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(",");

for (const lang of LANGS) {
        for (const other of LANGS)
                if (other !== lang)
                        for (const key of Object.keys(texts[other]))
                                if (!(key in texts[lang]))
                                        errors.push(`locales/${lang}.json: missing "${key}" (in ${other}.json)`);
        for (const [key, value] of Object.entries(texts[lang])) {
                if (typeof value !== "string" || value.trim() === "")
                        errors.push(`locales/${lang}.json: "${key}" is empty`);
                else if (texts.en[key] !== undefined && placeholders(value) !== placeholders(texts.en[key]))
                        errors.push(`locales/${lang}.json: "${key}" has placeholders {${placeholders(value)}}, English {${placeholders(texts.en[key])}}`);
        }
}
for (const [key, value] of Object.entries(texts.de))
        if (value === texts.en[key] && LETTER.test(value) && !identical.has(key))
                errors.push(`locales/de.json: "${key}" is the English text "${value}" (translate it, or list the key in identical.json)`);
for (const key of identical)
        if (texts.de[key] !== undefined && texts.de[key] !== texts.en[key])
                warnings.push(`locales/identical.json: "${key}" differs between the languages now; drop it from the list`);

/* ==== Sources ==== */

function sources(dir) {
        const out = [];
        for (const e of readdirSync(dir, { withFileTypes: true })) {
                const p = join(dir, e.name);
                if (e.isDirectory())
                        out.push(...sources(p));
                else if (/\.(js|jsx|mjs)$/.test(e.name))
                        out.push(p);
        }
        return out;
}

const used = new Set();
const prefixes = new Set();
const missing = new Set();

function walk(node, visit, parent) {
        if (!node || typeof node.type !== "string")
                return;
        visit(node, parent);
        for (const key of Object.keys(node)) {
                if (key === "loc" || key === "start" || key === "end" || key === "leadingComments" || key === "trailingComments")
                        continue;
                const v = node[key];
                if (Array.isArray(v))
                        for (const c of v)
                                walk(c, visit, node);
                else if (v && typeof v.type === "string")
                        walk(v, visit, node);
        }
}

function textOf(node) {
        if (node.type === "StringLiteral")
                return node.value;
        if (node.type === "TemplateLiteral")
                return node.quasis.map((q) => q.value.cooked).join("");
        return null;
}

function useKey(file, node, key) {
        used.add(key);
        if (!(key in texts.en)) {
                missing.add(key);
                error(file, node, `t("${key}"): no such key`);
        }
}

for (const path of sources(SRC)) {
        const file = relative(ROOT, path);
        const code = readFileSync(path, "utf8");
        const lines = code.split("\n");
        // i18n.js defines t and tn: its calls build keys from arguments.
        const definitions = file.endsWith("i18n.js");
        const ignored = (node) => /i18n-ignore/.test(lines[node.loc.start.line - 1] || "");
        let ast;
        try {
                ast = parse(code, { sourceType: "module", plugins: ["jsx"] });
        } catch (e) {
                errors.push(`${file}: cannot parse: ${e.message}`);
                continue;
        }
        walk(ast.program, (node, parent) => {
                // A key named as a string elsewhere (a table of keys).
                if (node.type === "StringLiteral" && node.value in texts.en)
                        used.add(node.value);
                // StateBadge family="vm.state": keys under "vm.state.".
                if (node.type === "JSXAttribute" && node.name.name === "family" && node.value && node.value.type === "StringLiteral")
                        prefixes.add(`${node.value.value}.`);
                if (node.type === "CallExpression" && node.callee.type === "Identifier" &&
                    (node.callee.name === "t" || node.callee.name === "tn") && node.arguments.length) {
                        const arg = node.arguments[0];
                        const plural = node.callee.name === "tn";
                        if (arg.type === "StringLiteral") {
                                if (plural) {
                                        useKey(file, node, `${arg.value}.one`);
                                        useKey(file, node, `${arg.value}.other`);
                                } else {
                                        useKey(file, node, arg.value);
                                }
                        } else if (arg.type === "TemplateLiteral" && !definitions) {
                                const prefix = arg.quasis[0].value.cooked;
                                prefixes.add(prefix);
                                if (!prefix || !Object.keys(texts.en).some((k) => k.startsWith(prefix)))
                                        error(file, node, `${node.callee.name}(\`${prefix}...\`): no key starts with "${prefix}"`);
                        }
                        return;
                }
                if (ignored(node))
                        return;
                if (node.type === "JSXText" && LETTER.test(node.value)) {
                        error(file, node, `text not translated: "${node.value.trim()}"`);
                } else if (node.type === "JSXExpressionContainer" && parent && (parent.type === "JSXElement" || parent.type === "JSXFragment")) {
                        const s = textOf(node.expression);
                        if (s !== null && LETTER.test(s))
                                error(file, node, `text not translated: "${s}"`);
                } else if (node.type === "JSXAttribute" && node.value) {
                        const name = node.name.type === "JSXNamespacedName" ? `${node.name.namespace.name}:${node.name.name.name}` : node.name.name;
                        if (!TEXT_ATTRIBUTES.has(name))
                                return;
                        const v = node.value.type === "JSXExpressionContainer" ? node.value.expression : node.value;
                        const s = textOf(v);
                        if (s !== null && LETTER.test(s))
                                error(file, node, `${name}="${s}" not translated`);
                }
        });
}

// Keys that nothing names: neither literally nor under a run-time prefix.
for (const key of Object.keys(texts.en))
        if (!used.has(key) && ![...prefixes].some((p) => p && key.startsWith(p)))
                warnings.push(`locales: "${key}" is not used`);

if (process.argv.includes("--list-missing")) {
        console.log(JSON.stringify([...missing].sort(), null, 1));
        process.exit(0);
}
for (const w of warnings)
        console.warn(`warning: ${w}`);
for (const e of errors)
        console.error(`error: ${e}`);
const keys = Object.keys(texts.en).length;
if (errors.length) {
        console.error(`check-i18n: ${errors.length} errors (${keys} keys, ${LANGS.join(", ")})`);
        process.exit(1);
}
console.log(`check-i18n: ok, ${keys} keys in ${LANGS.join(" and ")}, ${used.size} used by name, ${warnings.length} warnings`);
