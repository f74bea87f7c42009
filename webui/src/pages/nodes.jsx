// SPDX-License-Identifier: LGPL-2.1-or-later
// The nodes: configuration (GET /nodes), who is online (GET /status),
// whether each can be fenced (GET /fencing); the state actions (active,
// standby, maintenance: at once), the node's settings (staged), fencing
// (check the outlets, fence, confirm a manual fencing) and removal.

import { useState } from "preact/hooks";
import * as api from "../api.js";
import { Badge, Checkbox, Confirm, Dialog, ErrorBox, Field, Loaded, MenuButton, Page, StateBadge, Table, useForm } from "../components/ui.jsx";
import { formatMiB, formatNumber, t } from "../i18n.js";
import { toast, toastError, useEvent, useResource } from "../store.js";
import { ClusterNetworkWizard } from "../wizards/network.jsx";

async function loadNodes() {
        const [nodes, status, fencing] = await Promise.all([
                api.listNodes(),
                api.getStatus().catch(() => null),
                api.getFencing().catch(() => null),
        ]);
        const online = new Map(((status && status.members) || []).map((m) => [m.id, m.online !== false]));
        const fence = new Map(((fencing && fencing.nodes) || []).map((n) => [n.node_id, n]));
        return nodes.map((n) => ({
                ...n,
                online: online.get(n.node_id) || false,
                fenceable: fence.has(n.node_id) ? fence.get(n.node_id).fenceable : null,
                fenceReason: fence.has(n.node_id) ? fence.get(n.node_id).reason : null,
                manager: status && status.manager && (status.manager.node_id === n.node_id || status.manager === n.node_id),
        }));
}

/* ==== Dialogs ==== */

function NodeSettings({ node, onClose }) {
        const form = useForm({
                memory_mib: String(node.memory_mib ?? 0),
                host_reserve_mib: String(node.host_reserve_mib ?? 1024),
                fence_delay_ms: String(node.fence_delay_ms ?? 0),
                esan_member: !!node.esan_member,
        }, (v) => {
                const e = {};
                for (const [k, max] of [["memory_mib", 1073741824], ["host_reserve_mib", 1073741824], ["fence_delay_ms", 600000]])
                        if (!/^\d+$/.test(v[k]) || Number(v[k]) > max)
                                e[k] = t("form.integer-range", { min: 0, max: formatNumber(max) });
                return e;
        });
        const save = (e) => {
                e.preventDefault();
                form.submit(async (v) => {
                        const fields = {};
                        for (const k of ["memory_mib", "host_reserve_mib", "fence_delay_ms"])
                                if (Number(v[k]) !== node[k])
                                        fields[k] = Number(v[k]);
                        if (v.esan_member !== !!node.esan_member)
                                fields.esan_member = v.esan_member;
                        if (Object.keys(fields).length)
                                await api.changeNode(node.id, fields);
                        toast("ok", t("common.staged"));
                        onClose();
                });
        };
        return (
                <Dialog title={t("nodes.settings-title", { name: node.name })} onClose={onClose}>
                        <form onSubmit={save} noValidate>
                                <Field label={t("nodes.memory")} inputMode="numeric" {...form.bind("memory_mib")} />
                                <Field label={t("nodes.host-reserve")} inputMode="numeric" hint={t("nodes.host-reserve-hint")}
                                        {...form.bind("host_reserve_mib")} />
                                <Field label={t("nodes.fence-delay")} inputMode="numeric" hint={t("nodes.fence-delay-hint")}
                                        {...form.bind("fence_delay_ms")} />
                                <Checkbox label={t("nodes.esan-member")} checked={form.values.esan_member}
                                        onChange={(e) => form.set("esan_member", e.currentTarget.checked)} />
                                <ErrorBox error={form.formError} />
                                <div class="dialog-foot">
                                        <button type="button" onClick={onClose}>{t("common.cancel")}</button>
                                        <button type="submit" class="primary" disabled={form.busy}>{t("common.stage")}</button>
                                </div>
                        </form>
                </Dialog>
        );
}

function FenceCheck({ node, onClose }) {
        const check = useResource(() => api.fenceCheck(node.id), [node.id]);
        return (
                <Dialog title={t("nodes.fence-check-title", { name: node.name })} onClose={onClose}>
                        <Loaded resource={check}>{(r) => (
                                <>
                                        <p>{r.ok ? <Badge tone="ok">{t("nodes.fence-check-ok")}</Badge>
                                                : <Badge tone="bad">{t("nodes.fence-check-bad")}</Badge>}</p>
                                        <Table caption={t("nodes.fence-check-title", { name: node.name })}
                                                head={[t("col.level"), t("col.device"), t("col.outlets"), t("col.result")]}>
                                                {(r.parts || []).map((p, i) => (
                                                        <tr key={i}>
                                                                <td>{p.level}</td>
                                                                <td>{p.device}</td>
                                                                <td>{(p.outlets || []).join(", ")}</td>
                                                                <td>{p.result && (p.result.ok ? <Badge tone="ok">{p.result.message}</Badge>
                                                                        : <Badge tone="bad">{p.result.message}</Badge>)}</td>
                                                        </tr>
                                                ))}
                                        </Table>
                                </>
                        )}</Loaded>
                </Dialog>
        );
}

function FenceDialog({ node, onClose }) {
        const form = useForm({ action: "off", reason: "" });
        const go = (e) => {
                e.preventDefault();
                form.submit(async (v) => {
                        const r = await api.fenceNode(node.id, { action: v.action, reason: v.reason });
                        toast("info", r.existing ? t("nodes.fence-existing") : t("nodes.fence-requested", { name: node.name }));
                        onClose();
                });
        };
        return (
                <Dialog title={t("nodes.fence-title", { name: node.name })} onClose={onClose}>
                        <form onSubmit={go} noValidate>
                                <p class="warning-text">{t("nodes.fence-warning")}</p>
                                <Field as="select" label={t("nodes.fence-action")} {...form.bind("action")}
                                        onChange={(e) => form.set("action", e.currentTarget.value)}>
                                        {["off", "reboot", "on"].map((a) => <option key={a} value={a}>{t(`fence.action.${a}`)}</option>)}
                                </Field>
                                <Field label={t("nodes.fence-reason")} maxLength={1024} {...form.bind("reason")} />
                                <ErrorBox error={form.formError} />
                                <div class="dialog-foot">
                                        <button type="button" onClick={onClose}>{t("common.cancel")}</button>
                                        <button type="submit" class="danger" disabled={form.busy}>{t("nodes.fence")}</button>
                                </div>
                        </form>
                </Dialog>
        );
}

/* ==== The page ==== */

function NodeRow({ node, setDialog, reload }) {
        const [open, setOpen] = useState(false);
        const [busy, setBusy] = useState(false);
        const setState = async (state) => {
                setBusy(true);
                try {
                        await api.setNodeState(node.id, state);
                        toast("ok", t("nodes.state-set", { name: node.name, state: t(`node.state.${state}`) }));
                        reload();
                } catch (e) {
                        toastError(e);
                } finally {
                        setBusy(false);
                }
        };
        return (
                <tr>
                        <th scope="row">
                                {node.name}
                                {node.manager && <> <Badge tone="info">{t("nodes.manager")}</Badge></>}
                        </th>
                        <td>{formatNumber(node.node_id)}</td>
                        <td>{node.online ? <Badge tone="ok">{t("node.online")}</Badge> : <Badge tone="bad">{t("node.offline")}</Badge>}</td>
                        <td><StateBadge family="node.state" state={node.state} /></td>
                        <td>{node.fenceable === null ? "—" : node.fenceable ? <Badge tone="ok">{t("common.yes")}</Badge>
                                : <span title={node.fenceReason || undefined}><Badge tone="bad">{t("common.no")}</Badge></span>}</td>
                        <td>{(node.addresses || []).join(", ")}</td>
                        <td>{formatMiB(node.memory_mib)}</td>
                        <td>{node.esan_member ? t("common.yes") : t("common.no")}</td>
                        <td class="actions">
                                <div class="button-group" role="group" aria-label={t("nodes.state-actions", { name: node.name })}>
                                        {api.NODE_STATES.map((s) => (
                                                <button type="button" key={s} disabled={busy || node.state === s}
                                                        aria-pressed={node.state === s ? "true" : "false"}
                                                        onClick={() => (s === "maintenance"
                                                                ? setDialog({ kind: "maintenance", node, run: () => setState(s) })
                                                                : setState(s))}>
                                                        {t(`node.action.${s}`)}
                                                </button>
                                        ))}
                                </div>
                                <MenuButton label={t("common.more")} open={open} setOpen={setOpen} items={[
                                        { label: t("nodes.settings"), onSelect: () => setDialog({ kind: "settings", node }) },
                                        { label: t("nodes.fence-check"), onSelect: () => setDialog({ kind: "check", node }) },
                                        { label: t("nodes.fence"), danger: true, onSelect: () => setDialog({ kind: "fence", node }) },
                                        { label: t("nodes.confirm-fenced"), onSelect: () => setDialog({ kind: "confirm", node }) },
                                        { label: t("nodes.remove"), danger: true, onSelect: () => setDialog({ kind: "remove", node }) },
                                ]} />
                        </td>
                </tr>
        );
}

export function NodesPage() {
        const nodes = useResource(loadNodes, [], ["nodes", "fence_devices", "fence_outlets"]);
        const [dialog, setDialog] = useState(null);
        const close = () => {
                setDialog(null);
                nodes.reload();
        };
        useEvent("membership", () => nodes.reload());

        return (
                <Page title={t("nav.nodes")}
                        actions={<button type="button" onClick={() => setDialog({ kind: "network" })}>{t("wizard.net.open")}</button>}>
                        <Loaded resource={nodes}>{(list) => (
                                <Table caption={t("nav.nodes")}
                                        head={[t("col.name"), t("col.node-id"), t("col.online"), t("col.state"), t("col.fenceable"),
                                                t("col.addresses"), t("col.memory"), t("col.esan"), t("col.actions")]}>
                                        {list.map((n) => <NodeRow key={n.id} node={n} setDialog={setDialog} reload={nodes.reload} />)}
                                </Table>
                        )}</Loaded>
                        {dialog && dialog.kind === "network" && <ClusterNetworkWizard onClose={close} />}
                        {dialog && dialog.kind === "settings" && <NodeSettings node={dialog.node} onClose={close} />}
                        {dialog && dialog.kind === "check" && <FenceCheck node={dialog.node} onClose={close} />}
                        {dialog && dialog.kind === "fence" && <FenceDialog node={dialog.node} onClose={close} />}
                        {dialog && dialog.kind === "maintenance" && (
                                <Confirm title={t("nodes.maintenance-title", { name: dialog.node.name })}
                                        text={t("nodes.maintenance-text")} confirmLabel={t("node.action.maintenance")}
                                        onConfirm={dialog.run} onClose={close} />
                        )}
                        {dialog && dialog.kind === "confirm" && (
                                <Confirm title={t("nodes.confirm-fenced-title", { name: dialog.node.name })}
                                        text={t("nodes.confirm-fenced-text", { name: dialog.node.name })}
                                        confirmLabel={t("nodes.confirm-fenced")} danger
                                        onConfirm={() => api.confirmFenced(dialog.node.id)} onClose={close} />
                        )}
                        {dialog && dialog.kind === "remove" && (
                                <Confirm title={t("nodes.remove-title", { name: dialog.node.name })}
                                        text={t("nodes.remove-text")} confirmLabel={t("nodes.remove")} danger
                                        onConfirm={() => api.removeNode(dialog.node.id)} onClose={close} />
                        )}
                </Page>
        );
}


