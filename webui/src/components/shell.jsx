// SPDX-License-Identifier: LGPL-2.1-or-later
// The frame around every page: the login, the top bar (cluster, who is
// logged in, the staged changes with Activate and Discard, the event
// stream's state, language, logout), the navigation, notifications and
// the quorum warning. Must not: know what a page shows.

import { useEffect, useRef, useState } from "preact/hooks";
import * as api from "../api.js";
import { LANGUAGES, language, setLanguage, t, tn } from "../i18n.js";
import { href, navigate } from "../router.js";
import { app, dismissToast, login, logout, refreshChanges, toastError, useStore } from "../store.js";
import { Confirm, ErrorBox, Field, useForm } from "./ui.jsx";

export const NAVIGATION = [
        ["dashboard", "nav.dashboard"],
        ["nodes", "nav.nodes"],
        ["vms", "nav.vms"],
        ["storage", "nav.storage"],
        ["networks", "nav.networks"],
        ["fencing", "nav.fencing"],
        ["infrastructure", "nav.infrastructure"],
        ["jobs", "nav.jobs"],
        ["audit", "nav.audit"],
];

// Which navigation entry a route belongs to.
const SECTION_OF = { vm: "vms", console: "vms", job: "jobs", alerts: "dashboard", changes: "dashboard" };

/* ==== Language ==== */

export function LanguageSelect() {
        return (
                <label class="language">
                        <span class="sr-only">{t("shell.language")}</span>
                        <select value={language()} onChange={(e) => setLanguage(e.currentTarget.value)}>
                                {Object.keys(LANGUAGES).map((lang) => (
                                        <option value={lang} key={lang}>{t(`language.${lang}`)}</option>
                                ))}
                        </select>
                </label>
        );
}

/* ==== Login ==== */

// Whether this node is in no cluster yet: the interfaces route answers
// without a session only then. null while unknown.
function useFreshNode() {
        const [fresh, setFresh] = useState(null);
        useEffect(() => {
                let live = true;
                api.interfaces().then(() => live && setFresh(true), () => live && setFresh(false));
                return () => {
                        live = false;
                };
        }, []);
        return fresh;
}

export function LoginPage() {
        const ended = useStore(app, (s) => s.sessionEnded);
        const fresh = useFreshNode();
        const form = useForm({ name: "", password: "" }, (v) => ({
                name: v.name.trim() ? undefined : t("login.name-required"),
                password: v.password ? undefined : t("login.password-required"),
        }));
        useEffect(() => {
                document.title = `${t("login.title")} · Haven`;
        }, []);
        const onSubmit = (e) => {
                e.preventDefault();
                form.submit((v) => login(v.name.trim(), v.password));
        };
        let failure = null;
        if (form.formError) {
                const e = form.formError;
                failure = e.status === 401 ? t("login.failed")
                        : e.status === 429 ? t("login.throttled", { seconds: e.retryAfter || 30 })
                                : null;
        }
        return (
                <div class="login">
                        <main id="main" class="login-box">
                                <div class="login-head">
                                        <img src="favicon.svg" alt="" width="40" height="40" />
                                        <h1>{t("login.title")}</h1>
                                        <LanguageSelect />
                                </div>
                                {ended && <p class="notice" role="status">{t("login.session-ended")}</p>}
                                {fresh && (
                                        <div class="notice setup-offer" role="status">
                                                <p>{t("login.fresh")}</p>
                                                <a class="button primary" href={href("setup")}>{t("login.setup")}</a>
                                        </div>
                                )}
                                <form onSubmit={onSubmit} noValidate>
                                        <Field label={t("login.name")} autocomplete="username" autoFocus
                                                {...form.bind("name")} />
                                        <Field label={t("login.password")} type="password" autocomplete="current-password"
                                                {...form.bind("password")} />
                                        {failure ? <p class="field-error" role="alert">{failure}</p>
                                                : <ErrorBox error={form.formError} />}
                                        <button type="submit" class="primary" disabled={form.busy}>
                                                {form.busy ? t("login.busy") : t("login.submit")}
                                        </button>
                                </form>
                        </main>
                </div>
        );
}

/* ==== Top bar ==== */

function EventsIndicator() {
        const state = useStore(app, (s) => s.events);
        const tone = state === "open" ? "ok" : state === "unsupported" ? "off" : "warn";
        return (
                <span class={`live live-${tone}`} role="status" title={t(`events.${state}.hint`)}>
                        <span class="dot" aria-hidden="true" />
                        {t(`events.${state}`)}
                </span>
        );
}

function PendingChanges() {
        const changes = useStore(app, (s) => s.changes);
        const [confirm, setConfirm] = useState(null);
        const [busy, setBusy] = useState(false);
        const count = changes.length;

        const activate = async () => {
                setBusy(true);
                try {
                        const r = await api.activateChanges();
                        await refreshChanges();
                        if (r && r.job_id)
                                navigate("job", { id: r.job_id });
                } catch (e) {
                        toastError(e);
                } finally {
                        setBusy(false);
                }
        };

        return (
                <div class="pending" role="group" aria-label={t("changes.group")}>
                        <a href={href("changes")} class={`pending-count${count ? " has" : ""}`}>
                                {tn("changes.count", count)}
                        </a>
                        {count > 0 && (
                                <>
                                        <button type="button" class="primary" disabled={busy} onClick={activate}>
                                                {t("changes.activate")}
                                        </button>
                                        <button type="button" disabled={busy} onClick={() => setConfirm(true)}>
                                                {t("changes.discard")}
                                        </button>
                                </>
                        )}
                        {confirm && (
                                <Confirm title={t("changes.discard-title")}
                                        text={tn("changes.discard-text", count)}
                                        confirmLabel={t("changes.discard")} danger
                                        onConfirm={async () => {
                                                await api.discardChanges();
                                                await refreshChanges();
                                        }}
                                        onClose={() => setConfirm(null)} />
                        )}
                </div>
        );
}

function TopBar({ onMenu, menuOpen }) {
        const session = useStore(app, (s) => s.session);
        const cluster = useStore(app, (s) => s.cluster);
        return (
                <header class="topbar">
                        <button type="button" class="nav-toggle" aria-expanded={menuOpen ? "true" : "false"}
                                aria-controls="nav" onClick={onMenu}>
                                <span aria-hidden="true">☰</span>
                                <span class="sr-only">{t("shell.menu")}</span>
                        </button>
                        <a class="brand" href={href("dashboard")}>
                                <img src="favicon.svg" alt="" width="24" height="24" />
                                <span>{cluster && cluster.name ? cluster.name : t("shell.product")}</span>
                        </a>
                        <PendingChanges />
                        <div class="topbar-end">
                                <EventsIndicator />
                                <LanguageSelect />
                                <span class="who" title={t("shell.logged-in-as")}>
                                        <span class="sr-only">{t("shell.logged-in-as")}</span>
                                        {session && session.administrator}
                                </span>
                                <button type="button" onClick={logout}>{t("shell.logout")}</button>
                        </div>
                </header>
        );
}

/* ==== Navigation ==== */

function Nav({ route, open, onNavigate }) {
        const current = SECTION_OF[route.name] || route.name;
        return (
                <nav id="nav" class={`nav${open ? " open" : ""}`} aria-label={t("shell.navigation")}>
                        <ul>
                                {NAVIGATION.map(([name, key]) => (
                                        <li key={name}>
                                                <a href={href(name)} aria-current={current === name ? "page" : undefined}
                                                        onClick={onNavigate}>{t(key)}</a>
                                        </li>
                                ))}
                        </ul>
                </nav>
        );
}

/* ==== Notifications ==== */

function Toasts() {
        const toasts = useStore(app, (s) => s.toasts);
        return (
                <div class="toasts" aria-live="polite">
                        {toasts.map((x) => (
                                <div class={`toast toast-${x.kind}`} key={x.id} role={x.kind === "error" ? "alert" : "status"}>
                                        <span>{x.text}</span>
                                        <button type="button" class="icon" aria-label={t("common.dismiss")}
                                                onClick={() => dismissToast(x.id)}>×</button>
                                </div>
                        ))}
                </div>
        );
}

function QuorumBanner() {
        const quorate = useStore(app, (s) => s.quorate);
        if (quorate !== false)
                return null;
        return <div class="banner banner-bad" role="alert">{t("shell.no-quorum")}</div>;
}

/* ==== The frame ==== */

export function Shell({ route, children }) {
        const [menuOpen, setMenuOpen] = useState(false);
        const main = useRef(null);
        // A new page: focus its heading (or the main region), so keyboard
        // and screen reader users start there.
        useEffect(() => {
                const h = document.getElementById("page-title");
                const target = h || main.current;
                if (target && document.activeElement !== target && !main.current.contains(document.activeElement))
                        target.focus({ preventScroll: false });
                setMenuOpen(false);
        }, [route.path]);
        return (
                <div class="shell">
                        <a class="skip" href="#main" onClick={(e) => {
                                e.preventDefault();
                                main.current.focus();
                        }}>{t("shell.skip")}</a>
                        <TopBar menuOpen={menuOpen} onMenu={() => setMenuOpen(!menuOpen)} />
                        <div class="body">
                                <Nav route={route} open={menuOpen} onNavigate={() => setMenuOpen(false)} />
                                <main id="main" ref={main} tabIndex={-1}>
                                        <QuorumBanner />
                                        {children}
                                </main>
                        </div>
                        <Toasts />
                </div>
        );
}

export function LoginShell({ children }) {
        return (
                <>
                        {children}
                        <Toasts />
                </>
        );
}
