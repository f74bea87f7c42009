// SPDX-License-Identifier: LGPL-2.1-or-later
// Languages: every visible string is t("key") (or tn for counts) from
// locales/LANG.json; numbers, sizes and times are formatted for the
// language. The language comes from localStorage, else the browser's, else
// English. Must not: hold text of its own (scripts/check-i18n.mjs checks
// that both languages have every key and the sources wrap every string).

import de from "./locales/de.json";
import en from "./locales/en.json";

export const LANGUAGES = { en, de };
const STORAGE_KEY = "haven.language";

function initialLanguage() {
        try {
                const saved = window.localStorage.getItem(STORAGE_KEY);
                if (saved && LANGUAGES[saved])
                        return saved;
        } catch {
                /* storage may be off */
        }
        const wanted = (window.navigator.languages && window.navigator.languages.length)
                ? window.navigator.languages : [window.navigator.language || "en"];
        for (const tag of wanted) {
                const base = String(tag).toLowerCase().split("-")[0];
                if (LANGUAGES[base])
                        return base;
        }
        return "en";
}

let current = initialLanguage();
let plural = new Intl.PluralRules(current);
const listeners = new Set();

export function language() {
        return current;
}

// Switches the language, remembers it, tells every listener.
export function setLanguage(lang) {
        if (!LANGUAGES[lang] || lang === current)
                return;
        current = lang;
        plural = new Intl.PluralRules(lang);
        try {
                window.localStorage.setItem(STORAGE_KEY, lang);
        } catch {
                /* storage may be off */
        }
        document.documentElement.lang = lang;
        for (const fn of listeners)
                fn(lang);
}

export function onLanguage(fn) {
        listeners.add(fn);
        return () => listeners.delete(fn);
}

function fill(text, params) {
        if (!params)
                return text;
        return text.replace(/\{(\w+)\}/g, (m, name) =>
                (params[name] === undefined || params[name] === null ? m : String(params[name])));
}

// The text of key in the current language with {name} placeholders filled.
// A missing key shows as the key (and is logged), never as nothing.
export function t(key, params) {
        let text = LANGUAGES[current][key];
        if (text === undefined) {
                text = en[key];
                if (text === undefined) {
                        console.warn(`i18n: no text for "${key}"`);
                        return key;
                }
        }
        return fill(text, params);
}

// The text for a count: key.one or key.other (by the language's plural
// rules), {count} filled with the formatted number.
export function tn(key, count, params) {
        const form = plural.select(count) === "one" ? "one" : "other";
        return t(`${key}.${form}`, { ...params, count: formatNumber(count) });
}

/* ==== Formats ==== */

export function formatNumber(n, digits = 0) {
        if (n === null || n === undefined || Number.isNaN(n))
                return "—";
        return new Intl.NumberFormat(current, { maximumFractionDigits: digits }).format(n);
}

export function formatPercent(n, digits = 0) {
        if (n === null || n === undefined || Number.isNaN(n))
                return "—";
        return new Intl.NumberFormat(current, { style: "percent", maximumFractionDigits: digits }).format(n / 100);
}

// A size given in MiB, in the largest unit that keeps it ≥ 1.
export function formatMiB(mib) {
        if (mib === null || mib === undefined)
                return "—";
        const units = ["unit.mib", "unit.gib", "unit.tib", "unit.pib"];
        let v = mib, i = 0;
        while (v >= 1024 && i < units.length - 1) {
                v /= 1024;
                i++;
        }
        return t(units[i], { n: formatNumber(v, v < 10 && i > 0 ? 1 : 0) });
}

// A time in microseconds since 1970 (the API's times).
export function formatTime(usec) {
        if (!usec)
                return "—";
        return new Intl.DateTimeFormat(current, { dateStyle: "medium", timeStyle: "medium" })
                .format(new Date(usec / 1000));
}

// A clock time of today (a chart's axis): 14:05:30 / 2:05:30 PM.
// (One formatter per language: a chart asks for every tick of every draw.)
let clock = null;
export function formatClock(sec) {
        if (!clock || clock.language !== current)
                clock = { language: current, format: new Intl.DateTimeFormat(current, { timeStyle: "medium" }) };
        return clock.format.format(new Date(sec * 1000));
}

export function formatDuration(ms) {
        if (ms === null || ms === undefined)
                return "—";
        if (ms < 1000)
                return t("unit.ms", { n: formatNumber(ms) });
        return t("unit.s", { n: formatNumber(ms / 1000, 1) });
}
