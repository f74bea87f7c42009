// SPDX-License-Identifier: LGPL-2.1-or-later
// Fencing: the devices (GET /fence-devices) with their health as every
// node's fencer sees it (GET /fencing) and a Test button (POST
// /fence-devices/{id}/test), which nodes can be fenced, the outlets (GET
// /fence-outlets; adding and removing one is staged), and the latest
// fence requests (GET /fence-requests).

import { useState } from "preact/hooks";
import * as api from "../api.js";
import { Badge, Dialog, ErrorBox, Facts, Field, Loaded, Page, Section, StateBadge, Table, useForm } from "../components/ui.jsx";
import { formatDuration, formatNumber, formatTime, t } from "../i18n.js";
import { toast, useAction, useResource } from "../store.js";
import { DeleteRow } from "./resources.jsx";
import { nodeName } from "./vms.jsx";

async function loadFencing() {
        const [devices, outlets, nodes, fencing, requests] = await Promise.all([
                api.fenceDevices.list(),
                api.fenceOutlets.list(),
                api.listNodes(),
                api.getFencing().catch(() => ({ devices: [], nodes: [] })),
                api.fenceRequests({ limit: 10 }).catch(() => ({ items: [] })),
        ]);
        return { devices, outlets, nodes, fencing, requests: requests.items };
}

function TestResult({ device, result, onClose }) {
        const details = result.details || {};
        return (
                <Dialog title={t("fencing.test-title", { name: device.name })} onClose={onClose}>
                        <p>{result.ok ? <Badge tone="ok">{t("fencing.test-ok")}</Badge> : <Badge tone="bad">{t("fencing.test-failed")}</Badge>}</p>
                        <Facts items={[
                                [t("fencing.message"), result.message],
                                result.code && [t("fencing.code"), result.code],
                                result.field && [t("fencing.field"), result.field],
                                [t("fencing.elapsed"), formatDuration(result.elapsed_ms)],
                                details.model && [t("fencing.model"), details.model],
                                details.outlet_count !== undefined && [t("fencing.outlet-count"), formatNumber(details.outlet_count)],
                        ]} />
                        {Array.isArray(details.outlets) && details.outlets.length > 0 && (
                                <Table caption={t("fencing.outlets")} head={[t("col.outlet"), t("col.name"), t("col.state")]}>
                                        {details.outlets.map((o, i) => (
                                                <tr key={i}><td>{o.outlet}</td><td>{o.name}</td><td>{o.state}</td></tr>
                                        ))}
                                </Table>
                        )}
                </Dialog>
        );
}

function Health({ device, fencing }) {
        const seen = (fencing.devices || []).filter((x) => x.device === device.name);
        if (!seen.length)
                return <span class="muted">—</span>;
        return (
                <ul class="plain">
                        {seen.map((x, i) => {
                                const h = x.health || {};
                                return (
                                        <li key={i}>
                                                {h.ok ? <Badge tone="ok">{t("fencing.healthy")}</Badge> : <Badge tone="bad">{t("fencing.unhealthy")}</Badge>}
                                                {" "}
                                                {t("fencing.seen-from", { node: x.seen_from })}
                                                {!h.ok && h.message && <span class="muted">{`: ${h.message}`}</span>}
                                        </li>
                                );
                        })}
                </ul>
        );
}

function DeviceRow({ device, data, onResult }) {
        const test = useAction();
        return (
                <tr>
                        <th scope="row">{device.name}</th>
                        <td>{t(`fence.type.${device.type}`)}</td>
                        <td>{device.address || "—"}</td>
                        <td>{device.enabled === false ? <Badge tone="off">{t("common.no")}</Badge> : t("common.yes")}</td>
                        <td><Health device={device} fencing={data.fencing} /></td>
                        <td class="actions">
                                <button type="button" disabled={test.busy} onClick={async () => {
                                        const r = await test.run(() => api.testFenceDevice(device.id));
                                        if (r)
                                                onResult({ device, result: r });
                                }}>{test.busy ? t("fencing.testing") : t("fencing.test")}</button>
                                <DeleteRow name={device.name} onDelete={() => api.fenceDevices.remove(device.id)} />
                        </td>
                </tr>
        );
}

function AddOutlet({ data }) {
        const first = (list, key) => (list[0] ? String(list[0][key]) : "");
        const form = useForm({ node_id: first(data.nodes, "node_id"), device_id: first(data.devices, "id"), outlet: "", level: "1" }, (v) => ({
                outlet: /^[A-Za-z0-9._:/-]{1,63}$/.test(v.outlet) ? undefined : t("fencing.outlet-rule"),
                level: /^[1-8]$/.test(v.level) ? undefined : t("form.integer-range", { min: 1, max: 8 }),
        }));
        const add = (e) => {
                e.preventDefault();
                form.submit(async (v) => {
                        await api.fenceOutlets.add({ node_id: Number(v.node_id), device_id: Number(v.device_id), outlet: v.outlet, level: Number(v.level) });
                        toast("ok", t("common.staged"));
                        form.setValues((x) => ({ ...x, outlet: "" }));
                });
        };
        if (!data.devices.length)
                return <p class="muted">{t("fencing.no-devices-for-outlets")}</p>;
        return (
                <form class="inline-form" onSubmit={add} noValidate aria-label={t("fencing.add-outlet")}>
                        <Field as="select" label={t("col.node")} {...form.bind("node_id")} onChange={(e) => form.set("node_id", e.currentTarget.value)}>
                                {data.nodes.map((n) => <option key={n.id} value={n.node_id}>{n.name}</option>)}
                        </Field>
                        <Field as="select" label={t("col.device")} {...form.bind("device_id")} onChange={(e) => form.set("device_id", e.currentTarget.value)}>
                                {data.devices.map((d) => <option key={d.id} value={d.id}>{d.name}</option>)}
                        </Field>
                        <Field label={t("col.outlet")} {...form.bind("outlet")} />
                        <Field label={t("col.level")} inputMode="numeric" {...form.bind("level")} />
                        <button type="submit" class="primary" disabled={form.busy}>{t("fencing.add-outlet")}</button>
                        <ErrorBox error={form.formError} />
                </form>
        );
}

export function FencingPage() {
        const data = useResource(loadFencing, [], ["fence_devices", "fence_outlets", "nodes", "fence_requests"]);
        const [result, setResult] = useState(null);
        return (
                <Page title={t("nav.fencing")}>
                        <Loaded resource={data}>{(d) => {
                                const deviceName = (id) => (d.devices.find((x) => x.id === id) || {}).name || String(id);
                                return (
                                        <>
                                                <Section title={t("fencing.devices")} id="fencing-devices">
                                                        <Table caption={t("fencing.devices")} empty={t("fencing.no-devices")}
                                                                head={[t("col.name"), t("col.type"), t("col.address"), t("col.enabled"), t("col.health"), t("col.actions")]}>
                                                                {d.devices.map((x) => <DeviceRow key={x.id} device={x} data={d} onResult={setResult} />)}
                                                        </Table>
                                                </Section>
                                                <Section title={t("fencing.nodes")} id="fencing-nodes">
                                                        <Table caption={t("fencing.nodes")} head={[t("col.node"), t("col.fenceable"), t("col.reason")]}>
                                                                {(d.fencing.nodes || []).map((n) => (
                                                                        <tr key={n.node_id}>
                                                                                <th scope="row">{n.node}</th>
                                                                                <td>{n.fenceable ? <Badge tone="ok">{t("common.yes")}</Badge> : <Badge tone="bad">{t("common.no")}</Badge>}</td>
                                                                                <td>{n.reason || "—"}</td>
                                                                        </tr>
                                                                ))}
                                                        </Table>
                                                </Section>
                                                <Section title={t("fencing.outlets")} id="fencing-outlets">
                                                        <Table caption={t("fencing.outlets")} empty={t("fencing.no-outlets")}
                                                                head={[t("col.node"), t("col.device"), t("col.outlet"), t("col.level"), t("col.actions")]}>
                                                                {d.outlets.map((o) => (
                                                                        <tr key={o.id}>
                                                                                <td>{nodeName(d.nodes, o.node_id)}</td>
                                                                                <td>{deviceName(o.device_id)}</td>
                                                                                <td>{o.outlet}</td>
                                                                                <td>{formatNumber(o.level)}</td>
                                                                                <td class="actions">
                                                                                        <DeleteRow name={t("fencing.outlet-name", { outlet: o.outlet, device: deviceName(o.device_id) })}
                                                                                                onDelete={() => api.fenceOutlets.remove(o.id)} />
                                                                                </td>
                                                                        </tr>
                                                                ))}
                                                        </Table>
                                                        <AddOutlet data={d} />
                                                </Section>
                                                <Section title={t("fencing.requests")} id="fencing-requests">
                                                        <Table caption={t("fencing.requests")} empty={t("fencing.no-requests")}
                                                                head={[t("col.time"), t("col.node"), t("col.action"), t("col.state"), t("col.by"), t("col.result")]}>
                                                                {d.requests.map((r) => (
                                                                        <tr key={r.id}>
                                                                                <td>{formatTime(r.requested_at)}</td>
                                                                                <td>{nodeName(d.nodes, r.node_id)}</td>
                                                                                <td>{t(`fence.action.${r.action}`)}</td>
                                                                                <td><StateBadge family="command.state" state={r.state} /></td>
                                                                                <td>{r.requested_by}</td>
                                                                                <td>{r.result || r.reason || "—"}</td>
                                                                        </tr>
                                                                ))}
                                                        </Table>
                                                </Section>
                                        </>
                                );
                        }}</Loaded>
                        {result && <TestResult device={result.device} result={result.result} onClose={() => setResult(null)} />}
                </Page>
        );
}
