// SPDX-License-Identifier: LGPL-2.1-or-later
// What happened and what waits: jobs (GET /jobs, paged) and a job's log
// (GET /jobs/{id}/log?after=, read again on every job-log event while the
// job runs), the audit log (GET /audit, paged), alerts (GET /alerts, clear
// one), and the staged changes with what activating them would change
// (GET /changes/diff; discard one, activate or discard all).

import { useEffect, useRef, useState } from "preact/hooks";
import * as api from "../api.js";
import { Badge, Confirm, ErrorBox, Facts, Loaded, Page, Pager, Progress, StateBadge, Table } from "../components/ui.jsx";
import { formatNumber, formatTime, t, tn } from "../i18n.js";
import { href, navigate } from "../router.js";
import { refreshChanges, toast, toastError, useAction, useEvent, useResource } from "../store.js";

const PAGE_SIZE = 50;

function usePage() {
        return useState({ before: undefined, stack: [] });
}

/* ==== Jobs ==== */

export function JobsPage() {
        const [page, setPage] = usePage();
        const list = useResource(() => api.jobs({ limit: PAGE_SIZE, before: page.before }), [page.before], ["jobs"]);
        return (
                <Page title={t("nav.jobs")}>
                        <Loaded resource={list}>{(r) => (
                                <>
                                        <Table caption={t("nav.jobs")} empty={t("jobs.none")}
                                                head={[t("col.id"), t("col.kind"), t("col.state"), t("col.by"), t("col.started"), t("col.finished")]}>
                                                {r.items.map((j) => (
                                                        <tr key={j.id}>
                                                                <td><a href={href("job", { id: j.id })}>{t("jobs.link", { id: j.id })}</a></td>
                                                                <td>{t(`job.kind.${j.kind}`) === `job.kind.${j.kind}` ? j.kind : t(`job.kind.${j.kind}`)}</td>
                                                                <td><StateBadge family="job.state" state={j.state} /></td>
                                                                <td>{j.created_by}</td>
                                                                <td>{formatTime(j.created_at)}</td>
                                                                <td>{formatTime(j.finished_at)}</td>
                                                        </tr>
                                                ))}
                                        </Table>
                                        <Pager page={page} setPage={setPage} nextBefore={r.next_before} />
                                </>
                        )}</Loaded>
                </Page>
        );
}

// A job's log, read incrementally while the job runs.
function useJobLog(id) {
        const [lines, setLines] = useState([]);
        const [state, setState] = useState(null);
        const [error, setError] = useState(null);
        const last = useRef(0);
        const busy = useRef(false);
        const again = useRef(false);
        const done = useRef(false);

        const fetchMore = async () => {
                if (busy.current) {
                        again.current = true;
                        return;
                }
                busy.current = true;
                try {
                        // Until the job has ended: what came since last_id.
                        for (;;) {
                                const r = await api.jobLog(id, last.current);
                                if (r.items.length)
                                        setLines((l) => [...l, ...r.items]);
                                last.current = r.last_id;
                                setState(r.state);
                                setError(null);
                                if (r.state !== "running")
                                        done.current = true;
                                if (!r.items.length || !again.current)
                                        break;
                                again.current = false;
                        }
                } catch (e) {
                        setError(e);
                } finally {
                        busy.current = false;
                }
        };

        useEffect(() => {
                setLines([]);
                setState(null);
                last.current = 0;
                done.current = false;
                fetchMore();
                // Also every 2 s while it runs (events may be missed).
                const timer = setInterval(() => {
                        if (!done.current)
                                fetchMore();
                }, 2000);
                return () => clearInterval(timer);
        }, [id]);
        useEvent("job-log", (ev) => {
                if (ev && String(ev.job_id) === String(id))
                        fetchMore();
        });
        useEvent("resync", fetchMore);
        return { lines, state, error };
}

export function JobPage({ id }) {
        const job = useResource(() => api.getJob(id), [id], ["jobs"]);
        const log = useJobLog(id);
        const box = useRef(null);
        const follow = useRef(true);
        useEffect(() => {
                if (box.current && follow.current)
                        box.current.scrollTop = box.current.scrollHeight;
        }, [log.lines.length]);
        const state = log.state || (job.data && job.data.state);
        const running = state === "running";
        return (
                <Page title={t("job.title", { id })} actions={<a class="button" href={href("jobs")}>{t("job.back")}</a>}>
                        <Loaded resource={job}>{(j) => (
                                <Facts items={[
                                        [t("col.kind"), j.kind],
                                        [t("col.state"), <StateBadge family="job.state" state={state} />],
                                        [t("col.by"), j.created_by],
                                        [t("col.started"), formatTime(j.created_at)],
                                        [t("col.finished"), formatTime(j.finished_at)],
                                        j.config_version !== null && j.config_version !== undefined && [t("job.config-version"), formatNumber(j.config_version)],
                                ]} />
                        )}</Loaded>
                        <Progress running={running}
                                label={running ? tn("job.running", log.lines.length) : state === "failed" ? t("job.failed") : state === "done" ? t("job.done") : t("common.loading")} />
                        <ErrorBox error={log.error} />
                        <h2 id="job-log">{t("job.log")}</h2>
                        <div class="log" ref={box} role="log" aria-labelledby="job-log" tabIndex={0}
                                onScroll={(e) => {
                                        const el = e.currentTarget;
                                        follow.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
                                }}>
                                {log.lines.length === 0 && <p class="muted">{t("job.no-lines")}</p>}
                                {log.lines.map((l) => (
                                        <div class="log-line" key={l.id}>
                                                <time>{formatTime(l.time)}</time>
                                                <span class="log-node">{l.node}</span>
                                                <span class="log-source">{l.source}</span>
                                                <span class="log-text">{l.line}</span>
                                        </div>
                                ))}
                        </div>
                </Page>
        );
}

/* ==== Audit ==== */

export function AuditPage() {
        const [page, setPage] = usePage();
        const list = useResource(() => api.audit({ limit: PAGE_SIZE, before: page.before }), [page.before], page.before ? [] : ["audit"]);
        return (
                <Page title={t("nav.audit")}>
                        <Loaded resource={list}>{(r) => (
                                <>
                                        <Table caption={t("nav.audit")} empty={t("audit.none")}
                                                head={[t("col.time"), t("col.actor"), t("col.node"), t("col.action"), t("col.detail")]}>
                                                {r.items.map((a) => (
                                                        <tr key={a.id}>
                                                                <td class="nowrap">{formatTime(a.time)}</td>
                                                                <td>{a.actor}</td>
                                                                <td>{a.node}</td>
                                                                <td>{a.action}</td>
                                                                <td class="wrap">{a.detail}</td>
                                                        </tr>
                                                ))}
                                        </Table>
                                        <Pager page={page} setPage={setPage} nextBefore={r.next_before} />
                                </>
                        )}</Loaded>
                </Page>
        );
}

/* ==== Alerts ==== */

function ClearButton({ alert }) {
        const action = useAction();
        return (
                <button type="button" disabled={action.busy}
                        onClick={() => action.run(() => api.clearAlert(alert.id), t("alerts.cleared"))}>
                        {t("alerts.clear")}
                </button>
        );
}

export function AlertsPage() {
        const [page, setPage] = usePage();
        const list = useResource(() => api.alerts({ limit: PAGE_SIZE, before: page.before }), [page.before], ["alerts"]);
        return (
                <Page title={t("alerts.title")}>
                        <Loaded resource={list}>{(r) => (
                                <>
                                        <Table caption={t("alerts.title")} empty={t("alerts.none")}
                                                head={[t("col.time"), t("col.severity"), t("col.node"), t("col.source"), t("col.message"), t("col.cleared")]}>
                                                {r.items.map((a) => (
                                                        <tr key={a.id}>
                                                                <td class="nowrap">{formatTime(a.time)}</td>
                                                                <td><StateBadge family="alert.severity" state={a.severity} /></td>
                                                                <td>{a.node}</td>
                                                                <td>{a.source}</td>
                                                                <td class="wrap">{a.message}</td>
                                                                <td>{a.cleared_at
                                                                        ? t("alerts.cleared-by", { who: a.cleared_by || "?", time: formatTime(a.cleared_at) })
                                                                        : <ClearButton alert={a} />}</td>
                                                        </tr>
                                                ))}
                                        </Table>
                                        <Pager page={page} setPage={setPage} nextBefore={r.next_before} />
                                </>
                        )}</Loaded>
                </Page>
        );
}

/* ==== Staged changes ==== */

function show(v) {
        if (v === null || v === undefined)
                return "—";
        return typeof v === "object" ? JSON.stringify(v) : String(v);
}

function Op({ op }) {
        const changes = op.changes ? Object.entries(op.changes) : [];
        const values = !changes.length && op.values ? Object.entries(op.values) : [];
        return (
                <li>
                        <p>
                                <Badge tone={op.op === "delete" ? "bad" : op.op === "insert" ? "ok" : "info"}>
                                        {t(`changes.op.${op.op}`) === `changes.op.${op.op}` ? op.op : t(`changes.op.${op.op}`)}
                                </Badge>
                                {" "}
                                <code>{op.table}</code>
                                {op.id ? <code>{` #${op.id}`}</code> : null}
                                {op.missing && <> <Badge tone="warn">{t("changes.missing")}</Badge></>}
                        </p>
                        {changes.length > 0 && (
                                <Table caption={t("changes.columns")} head={[t("col.column"), t("col.from"), t("col.to")]}>
                                        {changes.map(([k, c]) => (
                                                <tr key={k}><td><code>{k}</code></td><td>{show(c.from)}</td><td>{show(c.to)}</td></tr>
                                        ))}
                                </Table>
                        )}
                        {values.length > 0 && (
                                <Table caption={t("changes.values")} head={[t("col.column"), t("col.value")]}>
                                        {values.map(([k, v]) => <tr key={k}><td><code>{k}</code></td><td>{show(v)}</td></tr>)}
                                </Table>
                        )}
                </li>
        );
}

export function ChangesPage() {
        const diff = useResource(() => api.changesDiff(), [], ["staged_changes", "*"]);
        const [ask, setAsk] = useState(false);
        const action = useAction();
        const activate = async () => {
                const r = await action.run(() => api.activateChanges());
                if (r) {
                        await refreshChanges();
                        if (r.job_id)
                                navigate("job", { id: r.job_id });
                        else
                                toast("ok", t("changes.activated"));
                }
        };
        return (
                <Page title={t("changes.title")}
                        actions={diff.data && diff.data.length > 0 && (
                                <>
                                        <button type="button" class="primary" disabled={action.busy} onClick={activate}>{t("changes.activate")}</button>
                                        <button type="button" disabled={action.busy} onClick={() => setAsk(true)}>{t("changes.discard")}</button>
                                </>
                        )}>
                        <Loaded resource={diff}>{(changes) => (
                                changes.length === 0 ? <p>{t("changes.none")}</p> : (
                                        <ol class="changes">
                                                {changes.map((c) => (
                                                        <li key={c.id} class="change">
                                                                <div class="change-head">
                                                                        <h2>{c.summary || t("changes.change", { id: c.id })}</h2>
                                                                        <button type="button" class="danger-text"
                                                                                aria-label={t("changes.discard-one-named", { id: c.id })}
                                                                                onClick={async () => {
                                                                                        try {
                                                                                                await api.discardChange(c.id);
                                                                                                await refreshChanges();
                                                                                                diff.reload();
                                                                                        } catch (e) {
                                                                                                toastError(e);
                                                                                        }
                                                                                }}>{t("changes.discard-one")}</button>
                                                                </div>
                                                                <p class="muted">{t("changes.by", { who: c.created_by || "?", time: formatTime(c.created_at) })}</p>
                                                                <ul class="ops">{(c.ops || []).map((op, i) => <Op op={op} key={i} />)}</ul>
                                                        </li>
                                                ))}
                                        </ol>
                                )
                        )}</Loaded>
                        {ask && (
                                <Confirm title={t("changes.discard-title")} text={tn("changes.discard-text", (diff.data || []).length)}
                                        confirmLabel={t("changes.discard")} danger
                                        onConfirm={async () => {
                                                await api.discardChanges();
                                                await refreshChanges();
                                                diff.reload();
                                        }}
                                        onClose={() => setAsk(false)} />
                        )}
                </Page>
        );
}
