// SPDX-License-Identifier: LGPL-2.1-or-later
// VMs: the table (GET /vms, the manager's placements, the nodes' names,
// live vm/NAME entries from the event stream) with a context menu of the
// VM actions, and a VM's page (its settings, disks, NICs, CD-ROMs,
// commands, placement and a running migration). Actions are commands
// (202, followed until done) or, for the preferred node, at once.

import { useState } from "preact/hooks";
import * as api from "../api.js";
import { Confirm, Dialog, ErrorBox, Facts, Field, Loaded, MenuButton, Page, Pager, Progress, Section, StateBadge, Table, useForm } from "../components/ui.jsx";
import { formatDuration, formatMiB, formatNumber, formatTime, t } from "../i18n.js";
import { href, navigate } from "../router.js";
import { followVmCommand, statusMap, toast, toastError, useEvent, useResource } from "../store.js";
import { NewVmWizard } from "../wizards/vm.jsx";

/* ==== Data ==== */

async function loadVms() {
        const [vms, placements, nodes] = await Promise.all([
                api.vms.list(),
                api.vmPlacements().catch(() => []),
                api.listNodes(),
        ]);
        return { vms, placements, nodes };
}

const VM_TABLES = ["vms", "vm_placements", "nodes", "vm_commands"];

export function nodeName(nodes, nodeId) {
        if (nodeId === null || nodeId === undefined)
                return null;
        const n = nodes.find((x) => x.node_id === nodeId);
        return n ? n.name : String(nodeId);
}

// Where a VM runs and in what state: the VM controllers' live entries
// (vm/NAME) when the stream brought some, else the manager's placement.
export function vmRuntime(vm, placements, nodes) {
        const placement = placements.find((p) => p.vm_id === vm.id) || null;
        const entries = statusMap.get(`vm/${vm.name}`);
        let state = placement ? placement.state : "stopped";
        let nodeId = placement ? placement.node_id : null;
        let migration = null;
        if (entries && entries.size) {
                // Prefer the node the placement names; else any that has it.
                const pick = (nodeId !== null && entries.get(nodeId)) ? [nodeId, entries.get(nodeId)] : [...entries][0];
                if (pick[1].state !== "stopped" || !placement) {
                        nodeId = pick[0];
                        state = pick[1].state;
                }
                for (const v of entries.values())
                        if (v.migration)
                                migration = v.migration;
        }
        return { state, nodeId, node: nodeName(nodes, nodeId), placement, migration };
}

/* ==== Actions ==== */

// Runs a VM command and follows it.
async function command(vm, what) {
        try {
                const accepted = await api.vmCommand(vm.id, what);
                const label = t("vm.command.label", { command: t(`vm.action.${what}`), name: vm.name });
                toast("info", t("vm.command.sent", { what: label }));
                followVmCommand(accepted, label);
        } catch (e) {
                toastError(e);
        }
}

function NodeChoice({ title, vm, nodes, current, allowNone, submitLabel, onSubmit, onClose, hint }) {
        const candidates = nodes.filter((n) => n.node_id !== current);
        const form = useForm({ node: allowNone ? "" : (candidates[0] ? candidates[0].name : "") },
                (v) => ({ node: !allowNone && !v.node ? t("vms.choose-node") : undefined }));
        const go = (e) => {
                e.preventDefault();
                form.submit(async (v) => {
                        await onSubmit(v.node || null);
                        onClose();
                });
        };
        return (
                <Dialog title={title} onClose={onClose}>
                        <form onSubmit={go} noValidate>
                                {hint && <p>{hint}</p>}
                                <Field as="select" label={t("col.node")} {...form.bind("node")}
                                        onChange={(e) => form.set("node", e.currentTarget.value)}>
                                        {allowNone && <option value="">{t("vms.no-preference")}</option>}
                                        {candidates.map((n) => (
                                                <option key={n.id} value={n.name}>
                                                        {n.name} ({t(`node.state.${n.state}`)})
                                                </option>
                                        ))}
                                </Field>
                                <ErrorBox error={form.formError} />
                                <div class="dialog-foot">
                                        <button type="button" onClick={onClose}>{t("common.cancel")}</button>
                                        <button type="submit" class="primary" disabled={form.busy}>{submitLabel}</button>
                                </div>
                        </form>
                </Dialog>
        );
}

// The dialogs the VM menu opens; dialog: {kind, vm, runtime}.
export function VmDialogs({ dialog, nodes, onClose }) {
        if (!dialog)
                return null;
        const { kind, vm, runtime } = dialog;
        if (kind === "migrate")
                return (
                        <NodeChoice title={t("vms.migrate-title", { name: vm.name })} vm={vm}
                                nodes={nodes.filter((n) => n.state === "active")} current={runtime.nodeId}
                                hint={runtime.node ? t("vms.migrate-from", { node: runtime.node }) : null}
                                submitLabel={t("vm.action.migrate")} onClose={onClose}
                                onSubmit={async (node) => {
                                        const accepted = await api.migrateVm(vm.id, node);
                                        const label = t("vms.migrate-label", { name: vm.name, node });
                                        toast("info", t("vm.command.sent", { what: label }));
                                        followVmCommand(accepted, label);
                                }} />
                );
        if (kind === "prefer")
                return (
                        <NodeChoice title={t("vms.prefer-title", { name: vm.name })} vm={vm} nodes={nodes} current={null}
                                allowNone hint={t("vms.prefer-hint")} submitLabel={t("common.save")} onClose={onClose}
                                onSubmit={async (node) => {
                                        await api.preferNode(vm.id, node);
                                        toast("ok", node ? t("vms.preferred-set", { name: vm.name, node })
                                                : t("vms.preferred-cleared", { name: vm.name }));
                                }} />
                );
        if (kind === "confirm")
                return (
                        <Confirm title={t(`vms.confirm.${dialog.what}.title`, { name: vm.name })}
                                text={t(`vms.confirm.${dialog.what}.text`)}
                                confirmLabel={t(`vm.action.${dialog.what}`)} danger
                                onConfirm={() => command(vm, dialog.what)} onClose={onClose} />
                );
        if (kind === "delete")
                return (
                        <Confirm title={t("vms.delete-title", { name: vm.name })} text={t("vms.delete-text")}
                                confirmLabel={t("common.delete")} danger
                                onConfirm={async () => {
                                        await api.vms.remove(vm.id);
                                        toast("ok", t("common.staged"));
                                        navigate("vms");
                                }} onClose={onClose} />
                );
        return null;
}

// The VM's actions, for the table's context menu and the VM's page.
export function vmMenuItems(vm, runtime, setDialog, withDetails) {
        const running = ["running", "paused", "migrating", "migrating-out", "starting"].includes(runtime.state);
        const ask = (what) => () => setDialog({ kind: "confirm", what, vm, runtime });
        return [
                withDetails && { label: t("vms.details"), onSelect: () => navigate("vm", { id: vm.id }) },
                { label: t("vms.console"), disabled: !running, onSelect: () => navigate("console", { id: vm.id }) },
                { label: t("vm.action.start"), disabled: running, onSelect: () => command(vm, "start") },
                { label: t("vm.action.shutdown"), disabled: !running, onSelect: () => command(vm, "shutdown") },
                { label: t("vm.action.reboot"), disabled: !running, onSelect: () => command(vm, "reboot") },
                { label: t("vm.action.reset"), disabled: !running, danger: true, onSelect: ask("reset") },
                { label: t("vm.action.poweroff"), disabled: !running, danger: true, onSelect: ask("poweroff") },
                { label: t("vms.migrate-menu"), disabled: !running, onSelect: () => setDialog({ kind: "migrate", vm, runtime }) },
                { label: t("vms.prefer-menu"), onSelect: () => setDialog({ kind: "prefer", vm, runtime }) },
                vm.ha === "sticky" && { label: t("vm.action.release"), onSelect: () => command(vm, "release") },
                withDetails ? null : { label: t("common.delete"), danger: true, onSelect: () => setDialog({ kind: "delete", vm, runtime }) },
        ];
}

function MigrationProgress({ migration, nodes }) {
        if (!migration)
                return null;
        return (
                <Progress running percent={migration.percent ?? null}
                        label={t("vms.migrating-to", {
                                node: nodeName(nodes, migration.target_node) || "?",
                                percent: formatNumber(migration.percent ?? 0),
                        })} />
        );
}

/* ==== The table ==== */

function VmRow({ vm, data, setDialog }) {
        const [open, setOpen] = useState(false);
        const [at, setAt] = useState(null);
        const runtime = vmRuntime(vm, data.placements, data.nodes);
        return (
                <tr onContextMenu={(e) => {
                        e.preventDefault();
                        setAt({ x: e.clientX, y: e.clientY });
                        setOpen(true);
                }}>
                        <th scope="row"><a href={href("vm", { id: vm.id })}>{vm.name}</a></th>
                        <td>
                                <StateBadge family="vm.state" state={runtime.state} />
                                <MigrationProgress migration={runtime.migration} nodes={data.nodes} />
                        </td>
                        <td>{runtime.node || "—"}</td>
                        <td><StateBadge family="vm.ha" state={vm.ha || "off"} /></td>
                        <td>{nodeName(data.nodes, vm.preferred_node_id) || "—"}</td>
                        <td>{formatNumber(vm.vcpus)}</td>
                        <td>{formatMiB(vm.memory_mib)}</td>
                        <td class="actions">
                                <MenuButton label={t("col.actions")} open={open} at={at}
                                        setOpen={(o) => {
                                                setOpen(o);
                                                if (!o)
                                                        setAt(null);
                                        }}
                                        items={vmMenuItems(vm, runtime, setDialog, true)} />
                        </td>
                </tr>
        );
}

export function VmsPage() {
        const data = useResource(loadVms, [], VM_TABLES);
        const [dialog, setDialog] = useState(null);
        const [, setTick] = useState(0);
        useEvent("status", (ev) => {
                if (ev && typeof ev.key === "string" && ev.key.startsWith("vm/"))
                        setTick((x) => x + 1);
        });
        const [wizard, setWizard] = useState(false);
        return (
                <Page title={t("nav.vms")}
                        actions={<button type="button" class="primary" onClick={() => setWizard(true)}>{t("wizard.vm.open")}</button>}>
                        {wizard && <NewVmWizard onClose={() => {
                                setWizard(false);
                                data.reload();
                        }} />}
                        <p class="muted">{t("vms.menu-hint")}</p>
                        <Loaded resource={data}>{(d) => (
                                <>
                                        <Table caption={t("nav.vms")} empty={t("vms.none")}
                                                head={[t("col.name"), t("col.state"), t("col.node"), t("col.ha"), t("col.preferred"),
                                                        t("col.vcpus"), t("col.memory"), t("col.actions")]}>
                                                {d.vms.map((vm) => <VmRow key={vm.id} vm={vm} data={d} setDialog={setDialog} />)}
                                        </Table>
                                        <VmDialogs dialog={dialog} nodes={d.nodes} onClose={() => {
                                                setDialog(null);
                                                data.reload();
                                        }} />
                                </>
                        )}</Loaded>
                </Page>
        );
}

/* ==== A VM's page ==== */

async function loadVm(id) {
        const [vm, base, vmDisks, nics, cdroms, disks, networks] = await Promise.all([
                api.vms.get(id),
                loadVms(),
                api.vmDisks.list(),
                api.vmNics.list(),
                api.vmCdroms.list(),
                api.disks.list(),
                api.networks.list(),
        ]);
        const mine = (rows) => rows.filter((r) => r.vm_id === vm.id);
        return { vm, ...base, vmDisks: mine(vmDisks), nics: mine(nics), cdroms: mine(cdroms), disks, networks };
}

function Commands({ vmId }) {
        const [page, setPage] = useState({ before: undefined, stack: [] });
        const list = useResource(() => api.vmCommandsOf(vmId, { limit: 20, before: page.before }), [vmId, page.before], ["vm_commands"]);
        return (
                <Loaded resource={list}>{(r) => (
                        <>
                                <Table caption={t("vm.commands")}
                                        head={[t("col.time"), t("col.command"), t("col.state"), t("col.by"), t("col.result")]}>
                                        {r.items.map((c) => (
                                                <tr key={c.id}>
                                                        <td>{formatTime(c.requested_at)}</td>
                                                        <td>{t(`vm.action.${c.command}`)}</td>
                                                        <td><StateBadge family="command.state" state={c.state} /></td>
                                                        <td>{c.requested_by}</td>
                                                        <td>{c.result}</td>
                                                </tr>
                                        ))}
                                </Table>
                                <Pager page={page} setPage={setPage} nextBefore={r.next_before} />
                        </>
                )}</Loaded>
        );
}

export function VmPage({ id }) {
        const data = useResource(() => loadVm(id), [id], [...VM_TABLES, "vm_disks", "vm_nics", "vm_cdroms", "disks", "networks"]);
        const [dialog, setDialog] = useState(null);
        const [open, setOpen] = useState(false);
        const [, setTick] = useState(0);
        useEvent("status", (ev) => {
                if (ev && typeof ev.key === "string" && ev.key.startsWith("vm/"))
                        setTick((x) => x + 1);
        });
        const vmName = data.data ? data.data.vm.name : "";
        return (
                <Page title={vmName ? t("vm.title", { name: vmName }) : t("nav.vms")}
                        actions={data.data && (
                                <>
                                        <MenuButton label={t("col.actions")} open={open} setOpen={setOpen}
                                                items={vmMenuItems(data.data.vm, vmRuntime(data.data.vm, data.data.placements, data.data.nodes), setDialog, false)} />
                                        <a class="button" href={href("vms")}>{t("vm.back")}</a>
                                </>
                        )}>
                        <Loaded resource={data}>{(d) => {
                                const vm = d.vm;
                                const rt = vmRuntime(vm, d.placements, d.nodes);
                                const diskName = (n) => (d.disks.find((x) => x.id === n) || {}).name || String(n);
                                const netName = (n) => (d.networks.find((x) => x.id === n) || {}).name || String(n);
                                return (
                                        <>
                                                <Facts items={[
                                                        [t("col.state"), <StateBadge family="vm.state" state={rt.state} />],
                                                        [t("col.node"), rt.node || "—"],
                                                        rt.placement && rt.placement.reason && [t("vm.reason"), rt.placement.reason],
                                                        rt.placement && rt.placement.target_node_id && [t("vm.target"), nodeName(d.nodes, rt.placement.target_node_id)],
                                                        [t("col.ha"), <StateBadge family="vm.ha" state={vm.ha || "off"} />],
                                                        [t("col.preferred"), nodeName(d.nodes, vm.preferred_node_id) || "—"],
                                                        vm.ha === "sticky" && [t("vm.sticky-node"), nodeName(d.nodes, vm.sticky_node_id) || "—"],
                                                        [t("col.vcpus"), formatNumber(vm.vcpus)],
                                                        [t("col.memory"), formatMiB(vm.memory_mib)],
                                                        [t("vm.priority"), formatNumber(vm.priority)],
                                                        [t("vm.restart-policy"), t("vm.restart-policy-value", {
                                                                max: formatNumber(vm.restart_max), window: formatDuration((vm.restart_window_s || 0) * 1000),
                                                                relocate: formatNumber(vm.relocate_max),
                                                        })],
                                                        rt.placement && [t("vm.restarts"), formatNumber(rt.placement.restarts)],
                                                        vm.description && [t("vm.description"), vm.description],
                                                ]} />
                                                <MigrationProgress migration={rt.migration} nodes={d.nodes} />
                                                <Section title={t("vm.disks")} id="vm-disks">
                                                        <Table caption={t("vm.disks")} head={[t("col.disk"), t("col.bus"), t("col.boot-order")]}>
                                                                {d.vmDisks.map((x) => (
                                                                        <tr key={x.id}><td>{diskName(x.disk_id)}</td><td>{x.bus}</td><td>{x.boot_order ?? "—"}</td></tr>
                                                                ))}
                                                        </Table>
                                                </Section>
                                                <Section title={t("vm.nics")} id="vm-nics">
                                                        <Table caption={t("vm.nics")} head={[t("col.network"), t("col.model"), t("col.mac")]}>
                                                                {d.nics.map((x) => (
                                                                        <tr key={x.id}><td>{netName(x.network_id)}</td><td>{x.model}</td><td><code>{x.mac || "—"}</code></td></tr>
                                                                ))}
                                                        </Table>
                                                </Section>
                                                <Section title={t("vm.cdroms")} id="vm-cdroms">
                                                        <Table caption={t("vm.cdroms")} head={[t("col.iso")]}>
                                                                {d.cdroms.map((x) => <tr key={x.id}><td><code>{x.iso_path || "—"}</code></td></tr>)}
                                                        </Table>
                                                </Section>
                                                <Section title={t("vm.commands")} id="vm-commands">
                                                        <Commands vmId={vm.id} />
                                                </Section>
                                                <div class="page-actions">
                                                        <button type="button" class="danger" onClick={() => setDialog({ kind: "delete", vm, runtime: rt })}>
                                                                {t("vms.delete")}
                                                        </button>
                                                </div>
                                                <VmDialogs dialog={dialog} nodes={d.nodes} onClose={() => {
                                                        setDialog(null);
                                                        data.reload();
                                                }} />
                                        </>
                                );
                        }}</Loaded>
                </Page>
        );
}

