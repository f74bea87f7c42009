// SPDX-License-Identifier: LGPL-2.1-or-later
// The dashboard: the tiles of GET /dashboard (HA, VMs, disks, monitoring,
// jobs), live CPU / memory / disk charts per node, and the nodes' figures.
// Reloaded when the event stream says something changed (membership at
// once: a lost node must show within a second); the charts take the
// nodes' samples straight from the stream's node/metrics entries.

import { useEffect, useRef, useState } from "preact/hooks";
import * as api from "../api.js";
import { MetricChart, MetricHistory } from "../components/chart.jsx";
import { Badge, ErrorBox, Loading, Page, StateBadge, Table } from "../components/ui.jsx";
import { formatMiB, formatNumber, formatPercent, formatTime, t, tn } from "../i18n.js";
import { href } from "../router.js";
import { app, useEvent, useInterval, useStore } from "../store.js";

function Tile({ title, tone, link, children }) {
        return (
                <article class={`tile tile-${tone}`}>
                        <h2>{link ? <a href={link}>{title}</a> : title}</h2>
                        {children}
                </article>
        );
}

function Big({ value, label }) {
        return (
                <p class="big">
                        <span class="big-value">{value}</span>
                        <span class="big-label">{label}</span>
                </p>
        );
}

function Tiles({ d }) {
        const ha = d.ha || {};
        const vms = d.vms || {};
        const disks = d.disks || {};
        const mon = d.monitoring || { alerts: {} };
        const jobs = d.jobs || {};
        const alertCount = (mon.alerts.warning || 0) + (mon.alerts.critical || 0);
        const notFenceable = mon.nodes_not_fenceable || [];
        const haTone = ha.all_active && ha.resources_running === ha.resources_total ? "ok" : "warn";

        return (
                <div class="tiles">
                        <Tile title={t("dash.ha")} tone={haTone} link={href("nodes")}>
                                <p class="tile-status">
                                        {ha.all_active ? t("dash.ha.all-active")
                                                : t("dash.ha.nodes-active", { active: formatNumber(ha.nodes_active), total: formatNumber(ha.nodes_total) })}
                                </p>
                                <Big value={`${formatNumber(ha.resources_running)} / ${formatNumber(ha.resources_total)}`}
                                        label={t("dash.ha.resources")} />
                                {ha.details && ha.details.length > 0 && (
                                        <details>
                                                <summary>{tn("dash.ha.details", ha.details.length)}</summary>
                                                <ul>{ha.details.map((x, i) => <li key={i}>{x}</li>)}</ul>
                                        </details>
                                )}
                        </Tile>
                        <Tile title={t("dash.vms")} tone={vms.configured && vms.on < vms.configured ? "info" : "ok"} link={href("vms")}>
                                <dl class="counts">
                                        <div><dt>{t("dash.vms.configured")}</dt><dd>{formatNumber(vms.configured)}</dd></div>
                                        <div><dt>{t("dash.vms.on")}</dt><dd>{formatNumber(vms.on)}</dd></div>
                                        <div><dt>{t("dash.vms.paused")}</dt><dd>{formatNumber(vms.paused)}</dd></div>
                                </dl>
                        </Tile>
                        <Tile title={t("dash.disks")} tone="ok" link={href("storage")}>
                                <Big value={formatNumber(disks.count)} label={tn("dash.disks.count", disks.count || 0)} />
                                <p>{t("dash.disks.size", { size: formatMiB(disks.size_mib) })}</p>
                        </Tile>
                        <Tile title={t("dash.monitoring")} tone={mon.alerts.critical || notFenceable.length ? "bad" : alertCount ? "warn" : "ok"}
                                link={href("alerts")}>
                                <dl class="counts">
                                        <div><dt>{t("dash.monitoring.critical")}</dt><dd>{formatNumber(mon.alerts.critical || 0)}</dd></div>
                                        <div><dt>{t("dash.monitoring.warning")}</dt><dd>{formatNumber(mon.alerts.warning || 0)}</dd></div>
                                </dl>
                                <p>{notFenceable.length
                                        ? t("dash.monitoring.not-fenceable", { nodes: notFenceable.join(", ") })
                                        : t("dash.monitoring.all-fenceable")}</p>
                        </Tile>
                        <Tile title={t("dash.jobs")} tone={jobs.failed_recent ? "warn" : "ok"} link={href("jobs")}>
                                <dl class="counts">
                                        <div><dt>{t("dash.jobs.running")}</dt><dd>{formatNumber(jobs.running)}</dd></div>
                                        <div><dt>{t("dash.jobs.failed")}</dt><dd>{formatNumber(jobs.failed_recent)}</dd></div>
                                </dl>
                        </Tile>
                </div>
        );
}

function used(u, total) {
        if (u === null || u === undefined || !total)
                return "—";
        return t("dash.used-of", { used: formatMiB(u), total: formatMiB(total), percent: formatPercent((100 * u) / total) });
}

function NodeFigures({ nodes }) {
        return (
                <Table caption={t("dash.nodes")}
                        head={[t("col.node"), t("col.online"), t("col.state"), t("col.cpu"), t("col.memory"), t("col.swap"), t("col.disk")]}>
                        {nodes.map((n) => (
                                <tr key={n.node_id}>
                                        <th scope="row">{n.name}</th>
                                        <td>{n.online ? <Badge tone="ok">{t("node.online")}</Badge> : <Badge tone="bad">{t("node.offline")}</Badge>}</td>
                                        <td><StateBadge family="node.state" state={n.state} /></td>
                                        <td>{formatPercent(n.cpu_percent, 1)}</td>
                                        <td>{used(n.mem_used_mib, n.mem_total_mib)}</td>
                                        <td>{used(n.swap_used_mib, n.swap_total_mib)}</td>
                                        <td>{used(n.disk_used_mib, n.disk_total_mib)}</td>
                                </tr>
                        ))}
                </Table>
        );
}

export function DashboardPage() {
        const [dash, setDash] = useState(null);
        const [error, setError] = useState(null);
        const [version, setVersion] = useState(0);
        const history = useRef(new MetricHistory());
        const timer = useRef(null);
        const loading = useRef(false);
        const again = useRef(false);
        const eventsState = useStore(app, (s) => s.events);

        // One load at a time; a request while one runs makes one more.
        const load = async () => {
                if (loading.current) {
                        again.current = true;
                        return;
                }
                loading.current = true;
                try {
                        const d = await api.getDashboard();
                        setDash(d);
                        setError(null);
                        app.set({ quorate: d.quorate });
                        for (const n of d.nodes || [])
                                if (n.online && n.cpu_percent !== undefined)
                                        history.current.add(n.node_id, n.name, n);
                        setVersion((v) => v + 1);
                } catch (e) {
                        setError(e);
                } finally {
                        loading.current = false;
                        if (again.current) {
                                again.current = false;
                                load();
                        }
                }
        };
        // A reload at most ms from now; events that keep coming do not
        // postpone it.
        const due = useRef(0);
        const soon = (ms) => {
                const when = Date.now() + ms;
                if (timer.current && due.current <= when)
                        return;
                clearTimeout(timer.current);
                due.current = when;
                timer.current = setTimeout(() => {
                        timer.current = null;
                        load();
                }, ms);
        };

        useEffect(() => {
                load();
                return () => clearTimeout(timer.current);
        }, []);
        useEvent("membership", (ev) => {
                // Show a lost node at once, then read what the cluster says.
                if (ev && Array.isArray(ev.members))
                        setDash((d) => d && {
                                ...d,
                                quorate: ev.quorate,
                                nodes: (d.nodes || []).map((n) => ({ ...n, online: n.online && ev.members.includes(n.node_id) })),
                        });
                soon(0);
        });
        useEvent("commit", () => soon(250));
        useEvent("resync", () => soon(0));
        useEvent("status", (ev) => {
                if (ev && ev.key === "node/metrics" && ev.value) {
                        const name = dash && (dash.nodes || []).find((n) => n.node_id === ev.node);
                        history.current.add(ev.node, name && name.name, ev.value);
                        setVersion((v) => v + 1);
                } else {
                        soon(1000);
                }
        });
        // Without the event stream, read every 5 s.
        useInterval(load, eventsState === "open" ? 30000 : 5000);

        if (!dash)
                return (
                        <Page title={t("nav.dashboard")}>
                                {error ? <ErrorBox error={error} onRetry={load} /> : <Loading />}
                        </Page>
                );
        return (
                <Page title={t("nav.dashboard")}
                        actions={<span class="muted">{t("dash.config-version", { version: formatNumber(dash.config_version) })}</span>}>
                        <ErrorBox error={error} onRetry={load} />
                        <Tiles d={dash} />
                        <section class="section" aria-labelledby="dash-charts">
                                <h2 id="dash-charts">{t("dash.charts")}</h2>
                                <div class="charts">
                                        <MetricChart history={history.current} figure="cpu" title={t("dash.chart.cpu")} version={version} />
                                        <MetricChart history={history.current} figure="mem" title={t("dash.chart.memory")} version={version} />
                                        <MetricChart history={history.current} figure="disk" title={t("dash.chart.disk")} version={version} />
                                </div>
                        </section>
                        <section class="section" aria-labelledby="dash-nodes">
                                <h2 id="dash-nodes">{t("dash.nodes")}</h2>
                                <NodeFigures nodes={dash.nodes || []} />
                                <p class="muted">{t("dash.built-at", { time: formatTime(dash.built_at) })}</p>
                        </section>
                </Page>
        );
}
