// SPDX-License-Identifier: LGPL-2.1-or-later
// Storage (GET /disks: eSAN and shared disks, the eSAN nodes, replication
// from the stream's disk/NAME entries) and networks (GET /networks: the
// virtual switches). Removing a row is staged like every table write;
// adding them is the wizards' work (the storage and cluster network
// wizards open from here).

import { useState } from "preact/hooks";
import * as api from "../api.js";
import { Badge, Confirm, Loaded, Page, Progress, Section, Table } from "../components/ui.jsx";
import { formatMiB, formatNumber, t } from "../i18n.js";
import { statusMap, toast, useEvent, useResource } from "../store.js";
import { ClusterNetworkWizard, INTERCONNECT } from "../wizards/network.jsx";
import { StorageWizard } from "../wizards/storage.jsx";
import { nodeName } from "./vms.jsx";

// A staged deletion behind a confirmation.
export function DeleteRow({ name, onDelete }) {
        const [ask, setAsk] = useState(false);
        return (
                <>
                        <button type="button" class="danger-text" onClick={() => setAsk(true)}
                                aria-label={t("common.delete-named", { name })}>{t("common.delete")}</button>
                        {ask && (
                                <Confirm title={t("common.delete-named", { name })} text={t("common.delete-staged")}
                                        confirmLabel={t("common.delete")} danger
                                        onConfirm={async () => {
                                                await onDelete();
                                                toast("ok", t("common.staged"));
                                        }}
                                        onClose={() => setAsk(false)} />
                        )}
                </>
        );
}

/* ==== Storage ==== */

// The replication state of an eSAN disk, as haven-esand publishes it
// (disk/NAME: {role, connection, disk_state, sync_percent}), from any node.
function Replication({ disk }) {
        const entries = statusMap.get(`disk/${disk.name}`);
        if (disk.kind !== "esan")
                return <span class="muted">—</span>;
        if (!entries || entries.size === 0)
                return <span class="muted">{t("storage.sync-unknown")}</span>;
        const values = [...entries.values()];
        const syncing = values.find((v) => typeof v.sync_percent === "number" && v.sync_percent < 100);
        if (syncing)
                return <Progress running percent={syncing.sync_percent}
                        label={t("storage.syncing", { percent: formatNumber(syncing.sync_percent, 1) })} />;
        const ok = values.every((v) => (v.disk_state || "").toLowerCase() === "uptodate");
        return ok ? <Badge tone="ok">{t("storage.in-sync")}</Badge>
                : <Badge tone="warn">{values.map((v) => v.disk_state || v.connection || "?").join(" / ")}</Badge>;
}

export function StoragePage() {
        const data = useResource(async () => {
                const [disks, nodes] = await Promise.all([api.disks.list(), api.listNodes()]);
                return { disks, nodes };
        }, [], ["disks", "nodes"]);
        const [, setTick] = useState(0);
        useEvent("status", (ev) => {
                if (ev && typeof ev.key === "string" && ev.key.startsWith("disk/"))
                        setTick((x) => x + 1);
        });
        const [wizard, setWizard] = useState(false);
        return (
                <Page title={t("nav.storage")}
                        actions={<button type="button" class="primary" onClick={() => setWizard(true)}>{t("wizard.storage.open")}</button>}>
                        {wizard && <StorageWizard onClose={() => {
                                setWizard(false);
                                data.reload();
                        }} />}
                        <Loaded resource={data}>{(d) => {
                                const esanNodes = d.nodes.filter((n) => n.esan_member).map((n) => n.name);
                                return (
                                        <>
                                                <p>{esanNodes.length
                                                        ? t("storage.esan-nodes", { nodes: esanNodes.join(", ") })
                                                        : t("storage.no-esan-nodes")}</p>
                                                <Section title={t("storage.disks")} id="storage-disks">
                                                        <Table caption={t("storage.disks")} empty={t("storage.none")}
                                                                head={[t("col.name"), t("col.kind"), t("col.size"), t("col.nodes"), t("col.path"),
                                                                        t("col.replication"), t("col.actions")]}>
                                                                {d.disks.map((x) => (
                                                                        <tr key={x.id}>
                                                                                <th scope="row">{x.name}</th>
                                                                                <td>{t(`disk.kind.${x.kind}`)}</td>
                                                                                <td>{formatMiB(x.size_mib)}</td>
                                                                                <td>{(x.nodes || []).map((n) => nodeName(d.nodes, n)).join(", ") || "—"}</td>
                                                                                <td><code>{x.path || "—"}</code></td>
                                                                                <td><Replication disk={x} /></td>
                                                                                <td class="actions"><DeleteRow name={x.name} onDelete={() => api.disks.remove(x.id)} /></td>
                                                                        </tr>
                                                                ))}
                                                        </Table>
                                                </Section>
                                        </>
                                );
                        }}</Loaded>
                </Page>
        );
}

/* ==== Networks ==== */

// Where a switch stands on the online nodes, from each node's haven-vmd
// (the dashboard's nodes[].switches): ready everywhere, being made, or
// what keeps it from a node.
function SwitchState({ network, nodes }) {
        if (network.name === INTERCONNECT)
                return <span class="muted">{t("networks.interconnect-stored")}</span>;
        const online = nodes.filter((n) => n.online);
        const entry = (n) => (n.switches || []).find((x) => x.name === network.name);
        const failed = online.filter((n) => entry(n) && entry(n).error);
        const ready = online.filter((n) => entry(n) && !entry(n).error);
        if (failed.length)
                return (
                        <div>
                                <Badge tone="bad">{t("networks.not-ready", { n: failed.length, total: online.length })}</Badge>
                                <ul class="plain">
                                        {failed.map((n) => <li key={n.node_id}><strong>{n.name}</strong>: {entry(n).error}</li>)}
                                </ul>
                        </div>
                );
        if (online.length && ready.length === online.length)
                return <Badge tone="ok">{t("networks.ready", { n: ready.length, total: online.length })}</Badge>;
        return <Badge tone="info">{t("networks.pending", { n: ready.length, total: online.length })}</Badge>;
}

export function NetworksPage() {
        const data = useResource(async () => {
                const [list, dash] = await Promise.all([api.networks.list(), api.getDashboard()]);
                return { list, nodes: dash.nodes || [] };
        }, [], ["networks"]);
        // A node's haven-vmd made a switch, or could not.
        useEvent("status", (ev) => {
                if (ev && ev.key === "vmd")
                        data.reload();
        });
        const [wizard, setWizard] = useState(false);
        return (
                <Page title={t("nav.networks")}
                        actions={<button type="button" class="primary" onClick={() => setWizard(true)}>{t("wizard.net.open")}</button>}>
                        {wizard && <ClusterNetworkWizard onClose={() => {
                                setWizard(false);
                                data.reload();
                        }} />}
                        <p class="muted">{t("networks.intro")}</p>
                        <Loaded resource={data}>{({ list, nodes }) => (
                                <Table caption={t("nav.networks")} empty={t("networks.none")}
                                        head={[t("col.name"), t("col.uplinks"), t("col.bonding"), t("col.vlan"), t("col.mtu"), t("col.on-nodes"), t("col.actions")]}>
                                        {list.map((n) => (
                                                <tr key={n.id}>
                                                        <th scope="row">{n.name}</th>
                                                        <td>{(n.uplinks || []).join(", ") || "—"}</td>
                                                        <td>{t(`bonding.${n.bonding_mode || "none"}`)}</td>
                                                        <td>{n.vlan_id ?? t("networks.untagged")}</td>
                                                        <td>{formatNumber(n.mtu)}{n.mtu > 1500 && <> <Badge tone="info">{t("networks.jumbo")}</Badge></>}</td>
                                                        <td><SwitchState network={n} nodes={nodes} /></td>
                                                        <td class="actions"><DeleteRow name={n.name} onDelete={() => api.networks.remove(n.id)} /></td>
                                                </tr>
                                        ))}
                                </Table>
                        )}</Loaded>
                </Page>
        );
}
