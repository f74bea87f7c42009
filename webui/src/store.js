// SPDX-License-Identifier: LGPL-2.1-or-later
// The application's shared state and the hooks pages use to read it: the
// session, the cluster's name, the staged changes, the event stream and
// the status map entries seen on it, notifications. Data is read through
// api.js only. Must not: render anything (components do).

import { useEffect, useReducer, useRef, useState } from "preact/hooks";
import * as api from "./api.js";
import { onLanguage, t } from "./i18n.js";

/* ==== A small observable store ==== */

export function createStore(initial) {
        let state = initial;
        const listeners = new Set();
        return {
                get: () => state,
                set(patch) {
                        const next = typeof patch === "function" ? patch(state) : patch;
                        state = { ...state, ...next };
                        for (const fn of listeners)
                                fn(state);
                },
                subscribe(fn) {
                        listeners.add(fn);
                        return () => listeners.delete(fn);
                },
        };
}

// Re-renders the component when the selected part of the store changes.
export function useStore(store, select = (s) => s) {
        const [, force] = useReducer((x) => x + 1, 0);
        const selected = select(store.get());
        const last = useRef(selected);
        last.current = selected;
        useEffect(() => {
                const off = store.subscribe((s) => {
                        if (select(s) !== last.current)
                                force();
                });
                // A change between the render and this effect (the session
                // answer can come first) would be missed otherwise.
                if (select(store.get()) !== last.current)
                        force();
                return off;
        }, [store]);
        return selected;
}

// Re-renders the component when the language changes.
export function useLanguage() {
        const [, force] = useReducer((x) => x + 1, 0);
        useEffect(() => onLanguage(() => force()), []);
}

/* ==== Application state ==== */

export const app = createStore({
        phase: "loading", // loading, login, ready
        session: null, // {administrator, csrf_token, expires_at}
        sessionEnded: false,
        cluster: null, // the cluster row
        changes: [], // staged changes
        quorate: null,
        events: "closed", // the event stream's state
        toasts: [],
});

export const events = new api.EventStream();

// The status map as seen on the event stream since login: key → Map(node
// id → value). There is no route that reads it whole; pages start from
// the tables and the dashboard, and these entries refine them live.
export const statusMap = new Map();

events.on("state", (state) => app.set({ events: state }));
events.on("status", (ev) => {
        if (!ev || typeof ev.key !== "string")
                return;
        let byNode = statusMap.get(ev.key);
        if (!byNode) {
                byNode = new Map();
                statusMap.set(ev.key, byNode);
        }
        if (ev.value === null || ev.value === undefined)
                byNode.delete(ev.node);
        else
                byNode.set(ev.node, ev.value);
});
events.on("membership", (ev) => {
        if (ev && typeof ev.quorate === "boolean")
                app.set({ quorate: ev.quorate });
});
events.on("commit", (ev) => {
        const tables = (ev && ev.tables) || [];
        if (tables.includes("staged_changes"))
                refreshChanges();
        if (tables.includes("cluster"))
                refreshCluster();
});
events.on("resync", () => {
        refreshChanges();
        refreshCluster();
});

/* ==== Notifications ==== */

let toastId = 0;

// kind: "info", "ok", "error". Errors stay until dismissed.
export function toast(kind, text) {
        const id = ++toastId;
        app.set((s) => ({ toasts: [...s.toasts, { id, kind, text }] }));
        if (kind !== "error")
                setTimeout(() => dismissToast(id), 6000);
        return id;
}

export function dismissToast(id) {
        app.set((s) => ({ toasts: s.toasts.filter((x) => x.id !== id) }));
}

// The text for an API failure: the server's message (meant for people),
// after a translated word on what kind of failure it is.
export function errorText(e) {
        if (!(e instanceof api.ApiError))
                return String((e && e.message) || e);
        const kind = t(`error.${e.code}`);
        return kind === `error.${e.code}` || kind === e.message ? e.message : `${kind}: ${e.message}`;
}

export function toastError(e) {
        if (e && e.name === "AbortError")
                return;
        toast("error", errorText(e));
}

/* ==== Session ==== */

api.onUnauthorized(() => {
        if (app.get().phase !== "ready")
                return;
        events.stop();
        app.set({ phase: "login", session: null, sessionEnded: true, changes: [], cluster: null });
});

export async function refreshChanges() {
        if (app.get().phase !== "ready")
                return;
        try {
                app.set({ changes: await api.listChanges() });
        } catch {
                /* shown where it matters; the indicator keeps its count */
        }
}

export async function refreshCluster() {
        if (app.get().phase !== "ready")
                return;
        try {
                app.set({ cluster: await api.getCluster() });
        } catch {
                /* the top bar shows no name */
        }
}

async function refreshQuorum() {
        try {
                const s = await api.getStatus();
                app.set({ quorate: s.quorate });
        } catch {
                /* the membership events tell later */
        }
}

function enter(session) {
        app.set({ phase: "ready", session, sessionEnded: false });
        events.start();
        refreshChanges();
        refreshCluster();
        refreshQuorum();
}

// At start: is there a session already (a reload)?
export async function bootstrap() {
        try {
                const s = await api.whoAmI();
                if (s)
                        enter(s);
                else
                        app.set({ phase: "login" });
        } catch {
                app.set({ phase: "login" });
        }
}

// Logs in; throws ApiError for the form to show.
export async function login(name, password) {
        enter(await api.login(name, password));
}

export async function logout() {
        events.stop();
        try {
                await api.logout();
        } catch {
                /* logged out either way */
        }
        app.set({ phase: "login", session: null, sessionEnded: false, changes: [], cluster: null });
}

/* ==== Hooks for pages ==== */

// Calls fn for every event of type while the component is mounted.
export function useEvent(type, fn) {
        const ref = useRef(fn);
        ref.current = fn;
        useEffect(() => events.on(type, (d) => ref.current(d)), [type]);
}

export function useInterval(fn, ms) {
        const ref = useRef(fn);
        ref.current = fn;
        useEffect(() => {
                if (!ms)
                        return undefined;
                const timer = setInterval(() => ref.current(), ms);
                return () => clearInterval(timer);
        }, [ms]);
}

// Loads data with loader() and loads it again when deps change, when a
// commit names one of tables ("*": any), after a resync, and on reload().
// Keeps the previous data while reloading. Returns {data, error, loading,
// reload}.
export function useResource(loader, deps = [], tables = []) {
        const [state, setState] = useState({ data: undefined, error: null, loading: true });
        const generation = useRef(0);
        const timer = useRef(null);
        const loaderRef = useRef(loader);
        loaderRef.current = loader;

        const load = () => {
                const mine = ++generation.current;
                setState((s) => ({ ...s, loading: true }));
                Promise.resolve()
                        .then(() => loaderRef.current())
                        .then((data) => {
                                if (mine === generation.current)
                                        setState({ data, error: null, loading: false });
                        }, (error) => {
                                if (mine === generation.current)
                                        setState((s) => ({ data: s.data, error, loading: false }));
                        });
        };
        // A burst of events makes one reload, at most 200 ms after the
        // first of them.
        const soon = () => {
                if (timer.current)
                        return;
                timer.current = setTimeout(() => {
                        timer.current = null;
                        load();
                }, 200);
        };

        useEffect(() => {
                load();
                return () => {
                        generation.current++;
                        clearTimeout(timer.current);
                        timer.current = null;
                };
        }, deps);
        useEvent("commit", (ev) => {
                const named = (ev && ev.tables) || [];
                if (tables.includes("*") || named.some((x) => tables.includes(x)))
                        soon();
        });
        useEvent("resync", soon);
        return { ...state, reload: load };
}

// Runs an API call for a button: {busy, run(fn, okText?)}; failures are
// shown as notifications. run returns the call's answer (undefined after a
// failure).
export function useAction() {
        const [busy, setBusy] = useState(false);
        const run = async (fn, okText) => {
                setBusy(true);
                try {
                        const r = await fn();
                        if (okText)
                                toast("ok", okText);
                        return r;
                } catch (e) {
                        toastError(e);
                        return undefined;
                } finally {
                        setBusy(false);
                }
        };
        return { busy, run };
}

/* ==== VM commands ==== */

// Follows a VM command (the 202 answer of a VM action) until it is done or
// failed, and says how it ended. Reads the command again on every commit
// that names vm_commands, and every 3 s besides.
export function followVmCommand(accepted, label) {
        let finished = false;
        let timer = null;
        const check = async () => {
                if (finished)
                        return;
                try {
                        const c = await api.getVmCommand(accepted.id);
                        if (c.state === "done" || c.state === "failed") {
                                finished = true;
                                off();
                                clearInterval(timer);
                                toast(c.state === "done" ? "ok" : "error",
                                        t(c.state === "done" ? "vm.command.done" : "vm.command.failed",
                                                { what: label, result: c.result || "" }));
                        }
                } catch (e) {
                        if (e instanceof api.ApiError && (e.status === 401 || e.status === 404)) {
                                finished = true;
                                off();
                                clearInterval(timer);
                        }
                }
        };
        const off = events.on("commit", (ev) => {
                if (ev && ev.tables && ev.tables.includes("vm_commands"))
                        check();
        });
        timer = setInterval(check, 3000);
        // Give up after ten minutes: the VM's commands list still has it.
        setTimeout(() => {
                finished = true;
                off();
                clearInterval(timer);
        }, 600000);
        check();
}
