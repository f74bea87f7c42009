// SPDX-License-Identifier: LGPL-2.1-or-later
// A VM's console: noVNC (loaded on first use, a module of its own) on the
// console WebSocket (GET /vms/{id}/console through the node's proxy, to
// whichever node runs the VM). When the stream ends (the VM stopped or
// moved: close code 1001) it connects again by itself.

import { useEffect, useRef, useState } from "preact/hooks";
import * as api from "../api.js";
import { ErrorBox, Page } from "../components/ui.jsx";
import { t } from "../i18n.js";
import { href } from "../router.js";
import { useResource } from "../store.js";

const RETRY_MS = 3000;
const RETRY_MAX = 40;
// The application's own URL, for the console module beside it.
const SCRIPT_URL = (document.currentScript && document.currentScript.src) || document.baseURI;

let consoleModule = null;

// Loads the console module once (its name is in index.html).
export function loadConsoleModule() {
        if (!consoleModule) {
                const meta = document.querySelector("meta[name=haven-console]");
                const url = new URL(meta ? meta.content : "console.js", SCRIPT_URL).href;
                consoleModule = import(url).catch((e) => {
                        consoleModule = null;
                        throw e;
                });
        }
        return consoleModule;
}

export function ConsolePage({ id }) {
        const vm = useResource(() => api.vms.get(id), [id], ["vms"]);
        const screen = useRef(null);
        const session = useRef(null);
        const retries = useRef(0);
        const retryTimer = useRef(null);
        const [state, setState] = useState("loading");
        const [error, setError] = useState(null);
        const [scale, setScale] = useState(true);
        const [attempt, setAttempt] = useState(0);

        useEffect(() => {
                let gone = false;
                setState(attempt ? "reconnecting" : "loading");
                loadConsoleModule().then((mod) => {
                        if (gone)
                                return;
                        setState("connecting");
                        session.current = mod.connect(screen.current, api.consoleUrl(id), {
                                connect: () => {
                                        retries.current = 0;
                                        setError(null);
                                        setState("connected");
                                },
                                disconnect: (info) => {
                                        session.current = null;
                                        if (gone)
                                                return;
                                        if (retries.current >= RETRY_MAX) {
                                                setState("disconnected");
                                                return;
                                        }
                                        retries.current++;
                                        setState(info.code === 1001 ? "moved" : "disconnected");
                                        retryTimer.current = setTimeout(() => setAttempt((a) => a + 1), RETRY_MS);
                                },
                                name: () => {},
                        });
                        session.current.setScale(scale);
                }, (e) => {
                        if (!gone) {
                                setError(e);
                                setState("failed");
                        }
                });
                return () => {
                        gone = true;
                        clearTimeout(retryTimer.current);
                        if (session.current)
                                session.current.disconnect();
                        session.current = null;
                };
        }, [id, attempt]);

        const reconnect = () => {
                clearTimeout(retryTimer.current);
                retries.current = 0;
                setAttempt((a) => a + 1);
        };
        const name = vm.data ? vm.data.name : "";

        return (
                <Page title={t("console.title", { name })}
                        actions={<a class="button" href={href("vm", { id })}>{t("console.back")}</a>}>
                        <div class="console-bar" role="toolbar" aria-label={t("console.toolbar")}>
                                <span role="status" class="console-state">{t(`console.state.${state}`)}</span>
                                <button type="button" disabled={state !== "connected"}
                                        onClick={() => session.current && session.current.ctrlAltDel()}>
                                        {t("console.ctrl-alt-del")}
                                </button>
                                <button type="button" onClick={reconnect}>{t("console.reconnect")}</button>
                                <label class="inline">
                                        <input type="checkbox" checked={scale} onChange={(e) => {
                                                setScale(e.currentTarget.checked);
                                                if (session.current)
                                                        session.current.setScale(e.currentTarget.checked);
                                        }} />
                                        {t("console.scale")}
                                </label>
                        </div>
                        <ErrorBox error={error} />
                        <div class="console-screen" ref={screen} aria-label={t("console.screen", { name })} role="application" />
                        <p class="muted">{t("console.hint")}</p>
                </Page>
        );
}
