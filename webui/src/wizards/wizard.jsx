// SPDX-License-Identifier: LGPL-2.1-or-later
// What every wizard shares: the frame (the steps, Close / Back / Next /
// Finish, in a dialog or on a page of its own), the form state of all its
// steps (checked as the user types; Next checks the step's fields; the
// server's error lands at its field, on its step), the rules that mirror
// the schema (docs/schema.md) and small fields (a size with its unit, "now
// or staged"). Must not: call the API (each wizard does, through api.js).

import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "../api.js";
import { Dialog, ErrorBox, Field } from "../components/ui.jsx";
import { formatMiB, t } from "../i18n.js";

/* ==== Rules (docs/schema.md) ==== */

export const NAME_RULE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOST = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
export const MIB_MAX = 1073741824;

// An IPv6 literal as inet_pton takes it (at most one "::", eight groups,
// an IPv4 tail allowed).
function isIpv6(s) {
        if (!/^[0-9A-Fa-f:.]+$/.test(s) || s.length < 2 || s.length > 45)
                return false;
        const parts = s.split("::");
        if (parts.length > 2)
                return false;
        const groups = (p) => (p === "" ? [] : p.split(":"));
        const all = [...groups(parts[0]), ...(parts.length === 2 ? groups(parts[1]) : [])];
        let count = 0;
        for (let i = 0; i < all.length; i++) {
                const g = all[i];
                if (i === all.length - 1 && g.includes(".")) {
                        if (!IPV4.test(g))
                                return false;
                        count += 2;
                } else if (/^[0-9A-Fa-f]{1,4}$/.test(g)) {
                        count++;
                } else {
                        return false;
                }
        }
        return parts.length === 2 ? count < 8 : count === 8;
}

export const isIp = (s) => IPV4.test(s) || isIpv6(s);
export const isHost = (s) => isIp(s) || HOST.test(s);

// A whole number from text, or NaN ("12" yes, "1.5", "1e3", "" no).
export function integer(text) {
        const s = String(text ?? "").trim();
        return /^-?\d{1,16}$/.test(s) ? Number(s) : NaN;
}

// The first problem of a whole number field, or undefined.
export function checkInteger(text, min, max, optional) {
        if (optional && String(text ?? "").trim() === "")
                return undefined;
        const n = integer(text);
        return Number.isNaN(n) || n < min || n > max ? t("form.integer-range", { min, max }) : undefined;
}

export function checkName(text, taken) {
        if (!NAME_RULE.test(text || ""))
                return t("form.name-rule");
        if (taken && taken.includes(text))
                return t("wizard.name-taken");
        return undefined;
}

// An absolute path of printable characters without "." or ".." parts,
// 2..4096 characters (disks.path, vm_cdroms.iso_path).
export function checkPath(text) {
        const s = text || "";
        if (s.length < 2 || s.length > 4096 || !s.startsWith("/") || /[\x00-\x1f\x7f]/.test(s) ||
            s.split("/").some((p) => p === "." || p === ".."))
                return t("wizard.path-rule");
        return undefined;
}

// A MAC as the schema stores it: lowercase pairs joined by ':'.
export const normalMac = (s) => String(s || "").trim().toLowerCase().replace(/-/g, ":");
export const isMac = (s) => MAC.test(normalMac(s));

/* ==== Sizes ==== */

export const UNITS = { MiB: 1, GiB: 1024, TiB: 1024 * 1024 };

// MiB from an amount and its unit, or NaN (at most 3 decimals).
export function sizeMib(amount, unit) {
        const s = String(amount ?? "").trim().replace(",", ".");
        if (!/^\d{1,10}(\.\d{1,3})?$/.test(s) || !UNITS[unit])
                return NaN;
        return Math.round(Number(s) * UNITS[unit]);
}

export function checkSize(amount, unit, min, max) {
        const mib = sizeMib(amount, unit);
        return Number.isNaN(mib) || mib < min || mib > max
                ? t("wizard.size-range", { min: formatMiB(min), max: formatMiB(max) }) : undefined;
}

// An amount and its unit side by side (one label for both).
export function SizeField({ label, form, name, unitName, hint }) {
        const b = form.bind(name);
        const unit = form.get(unitName);
        const mib = sizeMib(b.value, unit);
        return (
                <div class="size-field">
                        <Field label={label} inputMode="decimal" {...b}
                                hint={hint || (!b.error && !Number.isNaN(mib) ? formatMiB(mib) : undefined)} />
                        <label class="inline size-unit">
                                <span class="sr-only">{t("wizard.unit-of", { field: label })}</span>
                                <select value={unit} onChange={(e) => form.set(unitName, e.currentTarget.value)}>
                                        {Object.keys(UNITS).map((u) => <option key={u} value={u}>{t(`unit.name.${u}`)}</option>)}
                                </select>
                        </label>
                </div>
        );
}

/* ==== Form state across steps ==== */

// Reads a dotted path ("disks.1.size") of an object.
export function getPath(obj, path) {
        return path.split(".").reduce((o, k) => (o === undefined || o === null ? undefined : o[k]), obj);
}

// A copy of obj with the dotted path set to value (arrays stay arrays).
export function setPath(obj, path, value) {
        const [k, ...rest] = path.split(".");
        const copy = Array.isArray(obj) ? [...obj] : { ...obj };
        copy[k] = rest.length ? setPath(obj[k] ?? {}, rest.join("."), value) : value;
        return copy;
}

const owns = (prefixes, key) => prefixes.some((p) => key === p || key.startsWith(`${p}.`));

// The values of a whole wizard with the problems of each field: validate
// (values) → {path: text} runs on every change; a field shows its problem
// once it was touched (typed in, or its step's Next pressed); the server's
// error for a field shows until the field changes. Returns {values, get,
// set, update, bind, bindSelect, bindCheck, errors, touch, setServer,
// problems}.
export function useWizardForm(initial, validate) {
        const [values, setValues] = useState(initial);
        const latest = useRef(values);
        const [touched, setTouched] = useState({});
        const [server, setServerState] = useState({});
        const problems = validate(values) || {};

        const errorOf = (path) => server[path] || (touched[path] ? problems[path] : undefined);
        const update = (fn) => {
                latest.current = fn(latest.current);
                setValues(latest.current);
        };
        const set = (path, value) => {
                update((v) => setPath(v, path, value));
                setTouched((x) => ({ ...x, [path]: true }));
                setServerState((x) => (x[path] ? { ...x, [path]: undefined } : x));
        };
        const get = (path) => getPath(values, path);
        const bind = (path) => ({
                value: get(path) ?? "",
                error: errorOf(path),
                onInput: (e) => set(path, e.currentTarget.value),
        });
        const bindSelect = (path) => ({
                value: get(path) ?? "",
                error: errorOf(path),
                onChange: (e) => set(path, e.currentTarget.value),
        });
        const bindCheck = (path) => ({
                checked: !!get(path),
                onChange: (e) => set(path, e.currentTarget.checked),
        });
        // Marks the fields under prefixes touched; returns the paths that
        // have a problem (in the order validate gave them).
        const touch = (prefixes) => {
                const now = validate(latest.current) || {};
                const bad = Object.keys(now).filter((k) => now[k] && owns(prefixes, k));
                const mark = {};
                for (const k of Object.keys(now))
                        if (owns(prefixes, k))
                                mark[k] = true;
                setTouched((x) => ({ ...x, ...mark }));
                return bad;
        };
        const setServer = (path, message) => setServerState((x) => ({ ...x, [path]: message }));
        const clearServer = () => setServerState({});
        return {
                values, latest, get, set, update, bind, bindSelect, bindCheck, errorOf, touch,
                setServer, clearServer, problems, dirty: Object.keys(touched).length > 0,
        };
}

/* ==== The frame ==== */

// steps: [{id, title, fields: [path prefixes the step owns], render(),
// next?: async () => void (runs before leaving the step forward; throws
// to stay), skip?: bool, locked?: bool (done and not to be redone: Back
// does not go there), nextLabel?}]. onFinish: async () => void, after every step's
// fields are fine; an ApiError whose field mapError(field) turns into a
// form path is shown there, on its step. frame "dialog" (a modal) or
// "page". done: what to show instead of the steps once finished.
export function Wizard({ title, steps, form, onClose, onFinish, mapError, finishLabel, frame = "dialog",
        busyText, done, closeLabel }) {
        const visible = steps.filter((s) => !s.skip);
        const [index, setIndex] = useState(0);
        const [busy, setBusy] = useState(false);
        const [error, setError] = useState(null);
        const [asking, setAsking] = useState(false);
        const heading = useRef(null);
        const body = useRef(null);
        const focusInvalid = useRef(false);
        const at = Math.min(index, visible.length - 1);
        // Below the dialog's h2, or the page's h1.
        const Heading = frame === "page" ? "h2" : "h3";
        const step = visible[at];
        const last = at === visible.length - 1;

        // A new step: its heading gets the focus, unless a field with a
        // problem should have it (focusProblem). When the wizard opens,
        // its first field instead, once the dialog around it has placed
        // its own focus (after the frame: a dialog shown while the
        // wizard's data loaded may have kept it).
        const opened = useRef(false);
        useLayoutEffect(() => {
                if (!opened.current) {
                        opened.current = true;
                        const id = requestAnimationFrame(() => {
                                const first = body.current && body.current.querySelector("input:not([type=hidden]), select, textarea");
                                if (first && !first.disabled)
                                        first.focus();
                                else if (heading.current)
                                        heading.current.focus({ preventScroll: true });
                        });
                        return () => cancelAnimationFrame(id);
                }
                if (!focusInvalid.current && heading.current)
                        heading.current.focus({ preventScroll: true });
                return undefined;
        }, [at, step && step.id, !!done]);

        // After the next render: the first field with a problem gets the
        // focus (its error is tied to it, so it is read out).
        const focusProblem = () => {
                focusInvalid.current = true;
                requestAnimationFrame(() => {
                        focusInvalid.current = false;
                        const bad = body.current && body.current.querySelector("[aria-invalid=true]");
                        if (bad)
                                bad.focus();
                        else if (heading.current)
                                heading.current.focus({ preventScroll: true });
                });
        };

        const stepOf = (path) => visible.findIndex((s) => owns(s.fields || [], path));

        // Shows an API error at its field (on its step) or above the
        // buttons. Returns whether it found a field.
        const showError = (e) => {
                const path = e instanceof ApiError && e.field && mapError ? mapError(e.field) : null;
                const i = path ? stepOf(path) : -1;
                if (i >= 0) {
                        form.setServer(path, e.message);
                        setIndex(i);
                        setError(null);
                        focusProblem();
                        return true;
                }
                setError(e);
                return false;
        };

        const run = async (fn) => {
                setBusy(true);
                setError(null);
                try {
                        await fn();
                        return true;
                } catch (e) {
                        showError(e);
                        return false;
                } finally {
                        setBusy(false);
                }
        };

        const next = async (e) => {
                if (e)
                        e.preventDefault();
                if (busy)
                        return;
                if (form.touch(step.fields || []).length) {
                        setError(null);
                        focusProblem();
                        return;
                }
                if (!last) {
                        if (step.next && !(await run(step.next)))
                                return;
                        setIndex(at + 1);
                        return;
                }
                // Finish: every step must be fine.
                for (let i = 0; i < visible.length; i++) {
                        if (form.touch(visible[i].fields || []).length) {
                                setIndex(i);
                                focusProblem();
                                return;
                        }
                }
                if (step.next && !(await run(step.next)))
                        return;
                await run(onFinish);
        };

        // Back goes to the step before, unless that one cannot be redone
        // (locked: a cluster made is made).
        const backTo = at > 0 && !visible[at - 1].locked ? at - 1 : -1;
        const back = () => {
                setError(null);
                if (backTo >= 0)
                        setIndex(backTo);
        };
        const close = () => {
                if (!done && form.dirty && !asking) {
                        setAsking(true);
                        return;
                }
                onClose();
        };

        const content = done ? (
                <div class="wizard">
                        <div class="wizard-body" ref={body}>
                                <Heading class="wizard-step-title" tabIndex={-1} ref={heading}>{done.title}</Heading>
                                {done.render()}
                        </div>
                        <div class="wizard-foot">
                                {done.actions}
                                <button type="button" onClick={onClose}>{closeLabel || t("common.close")}</button>
                        </div>
                </div>
        ) : (
                <form class="wizard" onSubmit={next} noValidate aria-busy={busy ? "true" : "false"}>
                        <ol class="wizard-steps" aria-label={t("wizard.steps")}>
                                {visible.map((s, i) => (
                                        <li key={s.id} aria-current={i === at ? "step" : undefined}
                                                class={i < at ? "done" : undefined}>
                                                {i < at && !busy && !s.locked
                                                        ? <button type="button" class="link" onClick={() => setIndex(i)}>
                                                                <span class="step-number">{i + 1}</span> {s.title}
                                                        </button>
                                                        : <span><span class="step-number">{i + 1}</span> {s.title}</span>}
                                        </li>
                                ))}
                        </ol>
                        <div class="wizard-body" ref={body}>
                                <Heading class="wizard-step-title" tabIndex={-1} ref={heading}>
                                        {t("wizard.step-of", { n: at + 1, total: visible.length, title: step.title })}
                                </Heading>
                                {step.render()}
                                {busy && busyText && <p class="notice" role="status"><progress aria-label={busyText} /> {busyText}</p>}
                                <ErrorBox error={error} />
                        </div>
                        {asking && (
                                <div class="wizard-ask" role="alertdialog" aria-label={t("wizard.close-title")}>
                                        <p>{t("wizard.close-text")}</p>
                                        <button type="button" onClick={() => setAsking(false)}>{t("wizard.keep-editing")}</button>
                                        <button type="button" class="danger" onClick={onClose}>{t("wizard.close-anyway")}</button>
                                </div>
                        )}
                        <div class="wizard-foot">
                                <button type="button" onClick={close} disabled={busy}>{closeLabel || t("common.close")}</button>
                                <span class="wizard-foot-gap" />
                                <button type="button" onClick={back} disabled={busy || backTo < 0}>{t("wizard.back")}</button>
                                <button type="submit" class="primary" disabled={busy}>
                                        {last ? (finishLabel || t("wizard.finish")) : (step.nextLabel || t("wizard.next"))}
                                </button>
                        </div>
                </form>
        );

        if (frame === "page")
                return <div class="wizard-page" aria-label={title}>{content}</div>;
        return <Dialog title={title} onClose={close} wide>{content}</Dialog>;
}

/* ==== Small parts ==== */

// Apply now, or stage until Activate (the top bar).
export function WhenChoice({ form, name = "when" }) {
        const value = form.get(name);
        return (
                <fieldset class="choice">
                        <legend>{t("wizard.when")}</legend>
                        {["now", "staged"].map((w) => (
                                <label class="inline" key={w}>
                                        <input type="radio" name={`${name}-choice`} value={w} checked={value === w}
                                                onChange={() => form.set(name, w)} />
                                        {t(`wizard.when.${w}`)}
                                </label>
                        ))}
                        <p class="hint">{t(`wizard.when.${value}.hint`)}</p>
                </fieldset>
        );
}

// A radio group of choices [[value, label, disabled?]] for one path, with
// its problem (tied to the radios).
export function Choice({ form, name, legend, choices, hint }) {
        const value = form.get(name);
        const error = form.errorOf(name);
        const id = `${name}-choice-error`;
        return (
                <fieldset class={`choice${error ? " field-invalid" : ""}`}>
                        <legend>{legend}</legend>
                        {choices.map(([v, label, disabled]) => (
                                <label class="inline" key={v}>
                                        <input type="radio" name={`${name}-choice`} value={v} checked={value === v}
                                                disabled={disabled} aria-invalid={error ? "true" : undefined}
                                                aria-describedby={error ? id : undefined}
                                                onChange={() => form.set(name, v)} />
                                        {label}
                                </label>
                        ))}
                        {hint && <p class="hint">{hint}</p>}
                        {error && <p class="field-error" id={id}>{error}</p>}
                </fieldset>
        );
}

// A problem of a whole list or table (no single input to tie it to): shown
// where it is, and announced.
export function ListError({ form, name }) {
        const error = form.errorOf(name);
        return error ? <p class="field-error" id={`${name}-list-error`} role="alert">{error}</p> : null;
}

// The rows a batch makes, in words, for the last step.
export function Summary({ items }) {
        return (
                <dl class="summary">
                        {items.filter(Boolean).map(([k, v], i) => (
                                <div key={i}><dt>{k}</dt><dd>{v}</dd></div>
                        ))}
                </dl>
        );
}

// "items/3/name" of a batch → [3, "name"], else null.
export function batchField(field) {
        const m = /^items\/(\d+)(?:\/(.+))?$/.exec(field || "");
        return m ? [Number(m[1]), m[2] || null] : null;
}

// Keeps a value up to date from outside (a load that finished after the
// wizard opened) until the user changed it.
export function useDefault(form, path, value) {
        useEffect(() => {
                if (value !== undefined && value !== null && (form.get(path) === "" || form.get(path) === undefined))
                        form.update((v) => setPath(v, path, value));
        }, [value]);
}
