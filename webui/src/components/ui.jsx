// SPDX-License-Identifier: LGPL-2.1-or-later
// The building blocks every page uses: page frame, loading and error
// boxes, badges, tables, a pager, form fields with their errors, a modal
// dialog, a confirmation, a menu button (the VMs' context menu). All of
// them keyboard-usable and labelled. Must not: call the API.

import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "../api.js";
import { t } from "../i18n.js";
import { errorText } from "../store.js";

/* ==== Page frame ==== */

// A page: its heading (focused on navigation, for screen readers), the
// actions beside it, the content.
export function Page({ title, actions, children }) {
        const heading = useRef(null);
        useEffect(() => {
                document.title = `${title} · Haven`;
        }, [title]);
        return (
                <section class="page" aria-labelledby="page-title">
                        <div class="page-head">
                                <h1 id="page-title" tabIndex={-1} ref={heading}>{title}</h1>
                                {actions && <div class="page-actions">{actions}</div>}
                        </div>
                        {children}
                </section>
        );
}

export function Section({ title, actions, children, id }) {
        return (
                <section class="section" aria-labelledby={id}>
                        <div class="section-head">
                                <h2 id={id}>{title}</h2>
                                {actions && <div class="page-actions">{actions}</div>}
                        </div>
                        {children}
                </section>
        );
}

export function Loading() {
        return <p class="muted" role="status">{t("common.loading")}</p>;
}

export function ErrorBox({ error, onRetry }) {
        if (!error)
                return null;
        return (
                <div class="error-box" role="alert">
                        <p>{errorText(error)}</p>
                        {onRetry && <button type="button" onClick={onRetry}>{t("common.retry")}</button>}
                </div>
        );
}

// What a resource hook holds: loading, error or the content.
export function Loaded({ resource, children }) {
        if (resource.data === undefined) {
                if (resource.error)
                        return <ErrorBox error={resource.error} onRetry={resource.reload} />;
                return <Loading />;
        }
        return (
                <>
                        {resource.error && <ErrorBox error={resource.error} onRetry={resource.reload} />}
                        {children(resource.data)}
                </>
        );
}

/* ==== Badges ==== */

// A state word with a colour class: tone "ok", "warn", "bad", "info", "off".
export function Badge({ tone = "info", children }) {
        return <span class={`badge badge-${tone}`}>{children}</span>;
}

const TONES = {
        active: "ok", running: "ok", done: "ok", online: "ok", ok: "ok",
        standby: "info", pending: "info", starting: "info", migrating: "info", stopping: "info",
        maintenance: "warn", paused: "warn", waiting: "warn", recovering: "warn", warning: "warn",
        failed: "bad", offline: "bad", critical: "bad", crashed: "bad", "start-failed": "bad",
        stopped: "off", off: "off",
};

export function toneOf(state) {
        return TONES[state] || "info";
}

// A translated state from a family of keys: StateBadge family="vm.state".
export function StateBadge({ family, state }) {
        if (state === null || state === undefined)
                return <span class="muted">—</span>;
        const key = `${family}.${state}`;
        const text = t(key);
        return <Badge tone={toneOf(state)}>{text === key ? state : text}</Badge>;
}

/* ==== Tables ==== */

// A table that scrolls sideways on narrow screens (a focusable region, so
// the keyboard can scroll it too).
export function Table({ caption, head, children, empty }) {
        const rows = Array.isArray(children) ? children.flat().filter(Boolean) : children;
        return (
                <div class="table-wrap" role="region" aria-label={caption} tabIndex={0}>
                        <table>
                                <caption class="sr-only">{caption}</caption>
                                <thead>
                                        <tr>{head.map((h, i) => <th scope="col" key={i}>{h}</th>)}</tr>
                                </thead>
                                <tbody>
                                        {(!rows || rows.length === 0)
                                                ? <tr><td colSpan={head.length} class="muted">{empty || t("common.none")}</td></tr>
                                                : rows}
                                </tbody>
                        </table>
                </div>
        );
}

// Newer/older buttons for the API's paged lists (newest first, ?before=).
export function Pager({ page, setPage, nextBefore }) {
        const stack = page.stack || [];
        return (
                <nav class="pager" aria-label={t("common.pages")}>
                        <button type="button" disabled={stack.length === 0}
                                onClick={() => setPage({ before: stack[stack.length - 1], stack: stack.slice(0, -1) })}>
                                {t("common.newer")}
                        </button>
                        <button type="button" disabled={!nextBefore}
                                onClick={() => setPage({ before: nextBefore, stack: [...stack, page.before] })}>
                                {t("common.older")}
                        </button>
                </nav>
        );
}

/* ==== Forms ==== */

let fieldCounter = 0;

function useId(prefix) {
        const ref = useRef(null);
        if (ref.current === null)
                ref.current = `${prefix}-${++fieldCounter}`;
        return ref.current;
}

// A labelled input, select or textarea with its hint and error (the error
// is announced and tied to the input).
export function Field({ label, error, hint, children, as = "input", ...props }) {
        const id = useId("field");
        const describedBy = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(" ") || undefined;
        const Tag = as;
        return (
                <div class={`field${error ? " field-invalid" : ""}`}>
                        <label for={id}>{label}</label>
                        <Tag id={id} aria-invalid={error ? "true" : undefined} aria-describedby={describedBy} {...props}>
                                {children}
                        </Tag>
                        {hint && <p class="hint" id={`${id}-hint`}>{hint}</p>}
                        {error && <p class="field-error" id={`${id}-error`}>{error}</p>}
                </div>
        );
}

export function Checkbox({ label, ...props }) {
        const id = useId("check");
        return (
                <div class="field field-check">
                        <input type="checkbox" id={id} {...props} />
                        <label for={id}>{label}</label>
                </div>
        );
}

// Form state with per-field errors, from the user's checks (validate(values)
// → {field: text}) as they type, and from the server (an ApiError's field;
// fieldMap maps the API's names to the form's). Returns {values, set,
// errors, formError, bind(name), submit(fn)}.
export function useForm(initial, validate = () => ({}), fieldMap = {}) {
        const [values, setValuesState] = useState(initial);
        // The latest values at once (a submit right after typing, before
        // the next render, must see them).
        const latest = useRef(values);
        const [touched, setTouched] = useState({});
        const [serverErrors, setServerErrors] = useState({});
        const [formError, setFormError] = useState(null);
        const [busy, setBusy] = useState(false);
        const inFlight = useRef(false);
        const checked = validate(values);

        const errors = {};
        for (const k of Object.keys(values))
                errors[k] = serverErrors[k] || (touched[k] ? checked[k] : undefined);

        const setValues = (next) => {
                latest.current = typeof next === "function" ? next(latest.current) : next;
                setValuesState(latest.current);
        };
        const set = (name, value) => {
                setValues((v) => ({ ...v, [name]: value }));
                setTouched((x) => ({ ...x, [name]: true }));
                setServerErrors((x) => ({ ...x, [name]: undefined }));
        };
        const bind = (name) => ({
                value: values[name] ?? "",
                error: errors[name],
                onInput: (e) => set(name, e.currentTarget.value),
        });
        const submit = async (fn) => {
                if (inFlight.current)
                        return undefined;
                const now = latest.current;
                const all = {};
                for (const k of Object.keys(now))
                        all[k] = true;
                setTouched(all);
                setFormError(null);
                setServerErrors({});
                if (Object.values(validate(now)).some(Boolean))
                        return undefined;
                inFlight.current = true;
                setBusy(true);
                try {
                        return await fn(now);
                } catch (e) {
                        const field = e instanceof ApiError && e.field ? (fieldMap[e.field] || e.field) : null;
                        if (field && field in now)
                                setServerErrors({ [field]: e.message });
                        else
                                setFormError(e);
                        return undefined;
                } finally {
                        inFlight.current = false;
                        setBusy(false);
                }
        };
        return { values, set, setValues, errors, formError, busy, bind, submit };
}

/* ==== Dialogs ==== */

// A modal dialog (the native <dialog>: focus stays inside, Escape closes).
// Focus returns to what had it before.
export function Dialog({ title, onClose, children, footer, wide }) {
        const ref = useRef(null);
        const titleId = useId("dialog");
        useLayoutEffect(() => {
                const el = ref.current;
                const before = document.activeElement;
                if (el.showModal)
                        el.showModal();
                else
                        el.setAttribute("open", "");
                const first = el.querySelector("input, select, textarea, button:not(.dialog-close)");
                if (first)
                        first.focus();
                return () => {
                        if (el.open && el.close)
                                el.close();
                        if (before && before.focus)
                                before.focus();
                };
        }, []);
        return (
                <dialog ref={ref} class={`dialog${wide ? " dialog-wide" : ""}`} aria-labelledby={titleId}
                        onCancel={(e) => {
                                e.preventDefault();
                                onClose();
                        }}>
                        <div class="dialog-head">
                                <h2 id={titleId}>{title}</h2>
                                <button type="button" class="dialog-close icon" aria-label={t("common.close")}
                                        onClick={onClose}>×</button>
                        </div>
                        <div class="dialog-body">{children}</div>
                        {footer && <div class="dialog-foot">{footer}</div>}
                </dialog>
        );
}

// Asks before doing something that cannot be undone.
export function Confirm({ title, text, confirmLabel, danger, onConfirm, onClose }) {
        const [busy, setBusy] = useState(false);
        const [error, setError] = useState(null);
        const go = async () => {
                setBusy(true);
                setError(null);
                try {
                        await onConfirm();
                        onClose();
                } catch (e) {
                        setError(e);
                        setBusy(false);
                }
        };
        return (
                <Dialog title={title} onClose={onClose}
                        footer={<>
                                <button type="button" onClick={onClose}>{t("common.cancel")}</button>
                                <button type="button" class={danger ? "danger" : "primary"} disabled={busy}
                                        onClick={go}>{confirmLabel}</button>
                        </>}>
                        <p>{text}</p>
                        <ErrorBox error={error} />
                </Dialog>
        );
}

/* ==== Menus ==== */

// A menu button: the button opens a list of actions (role menu); arrows,
// Home/End move, Enter runs, Escape/Tab close and focus goes back to the
// button. items: [{label, onSelect, disabled, danger}] (falsy entries are
// skipped). `at` ({x, y}) opens it at a point (right-click on a row).
export function MenuButton({ label, items, open, setOpen, at }) {
        const button = useRef(null);
        const menu = useRef(null);
        const list = items.filter(Boolean);
        const id = useId("menu");

        useEffect(() => {
                if (!open)
                        return undefined;
                const first = menu.current && menu.current.querySelector("[role=menuitem]:not([disabled])");
                if (first)
                        first.focus({ preventScroll: true });
                const outside = (e) => {
                        if (menu.current && !menu.current.contains(e.target) && !button.current.contains(e.target))
                                setOpen(false);
                };
                // It stays where it was placed: scrolling closes it.
                const away = (e) => {
                        if (!menu.current || !menu.current.contains(e.target))
                                setOpen(false);
                };
                document.addEventListener("mousedown", outside);
                window.addEventListener("scroll", away, true);
                window.addEventListener("resize", away);
                return () => {
                        document.removeEventListener("mousedown", outside);
                        window.removeEventListener("scroll", away, true);
                        window.removeEventListener("resize", away);
                };
        }, [open]);

        const close = (focusButton = true) => {
                setOpen(false);
                if (focusButton && button.current)
                        button.current.focus();
        };
        const onKeyDown = (e) => {
                const enabled = [...menu.current.querySelectorAll("[role=menuitem]:not([disabled])")];
                const i = enabled.indexOf(document.activeElement);
                let next = null;
                if (e.key === "ArrowDown")
                        next = enabled[(i + 1) % enabled.length];
                else if (e.key === "ArrowUp")
                        next = enabled[(i - 1 + enabled.length) % enabled.length];
                else if (e.key === "Home")
                        next = enabled[0];
                else if (e.key === "End")
                        next = enabled[enabled.length - 1];
                else if (e.key === "Escape") {
                        e.preventDefault();
                        close();
                        return;
                } else if (e.key === "Tab") {
                        close(false);
                        return;
                }
                if (next) {
                        e.preventDefault();
                        next.focus();
                }
        };
        // The menu is placed in the viewport (position: fixed), so a
        // scrolling table around the button does not clip it: below the
        // button's right edge or at the pointer, moved up and left to fit.
        const [pos, setPos] = useState(null);
        useLayoutEffect(() => {
                if (!open || !menu.current) {
                        setPos(null);
                        return;
                }
                const m = menu.current.getBoundingClientRect();
                const b = button.current.getBoundingClientRect();
                let x = at ? at.x : b.right - m.width;
                let y = at ? at.y : b.bottom + 4;
                if (y + m.height > window.innerHeight - 8)
                        y = Math.max(8, (at ? at.y : b.top - 4) - m.height);
                x = Math.max(8, Math.min(x, window.innerWidth - m.width - 8));
                setPos({ x, y });
        }, [open, at && at.x, at && at.y]);
        const style = { position: "fixed", left: `${pos ? pos.x : -9999}px`, top: `${pos ? pos.y : 0}px` };

        return (
                <div class="menu-wrap">
                        <button type="button" ref={button} class="menu-button" aria-haspopup="menu"
                                aria-expanded={open ? "true" : "false"} aria-controls={open ? id : undefined}
                                onClick={() => setOpen(!open)}
                                onKeyDown={(e) => {
                                        if (e.key === "ArrowDown" && !open) {
                                                e.preventDefault();
                                                setOpen(true);
                                        }
                                }}>
                                {label} <span aria-hidden="true">▾</span>
                        </button>
                        {open && (
                                <ul class="menu" role="menu" id={id} ref={menu} aria-label={label} style={style}
                                        onKeyDown={onKeyDown}>
                                        {list.map((item, i) => (
                                                <li role="none" key={i}>
                                                        <button type="button" role="menuitem" tabIndex={-1}
                                                                class={item.danger ? "danger-text" : undefined}
                                                                disabled={item.disabled}
                                                                onClick={() => {
                                                                        close();
                                                                        item.onSelect();
                                                                }}>{item.label}</button>
                                                </li>
                                        ))}
                                </ul>
                        )}
                </div>
        );
}

/* ==== Progress ==== */

// A job's or a migration's progress: a bar (indeterminate without a
// percentage) and the words for it.
export function Progress({ label, percent, running }) {
        return (
                <div class="progress">
                        {running && (percent === null || percent === undefined
                                ? <progress aria-label={label} />
                                : <progress aria-label={label} max="100" value={percent} />)}
                        <span>{label}</span>
                </div>
        );
}

// A list of key → value facts.
export function Facts({ items }) {
        return (
                <dl class="facts">
                        {items.filter(Boolean).map(([k, v], i) => (
                                <div key={i}><dt>{k}</dt><dd>{v}</dd></div>
                        ))}
                </dl>
        );
}
