// SPDX-License-Identifier: LGPL-2.1-or-later
// The new VM wizard: name, vCPUs, memory; disks (a new shared or eSAN
// disk of a size, or a free existing one; bus; boot order); NICs on a
// virtual switch (model, MAC if wanted); an installation ISO on a CD-ROM
// drive; HA mode (off, on, sticky to a node), preferred node, priority.
// Finish writes one batch (POST /batch: the VM, its new disks, their
// attachments, NICs and CD-ROM drive, tied together by refs), at once by
// default so that it can offer to start the VM, or staged.

import { useRef, useState } from "preact/hooks";
import * as api from "../api.js";
import { Dialog, ErrorBox, Field, Loading } from "../components/ui.jsx";
import { formatMiB, formatNumber, t } from "../i18n.js";
import { navigate } from "../router.js";
import { followVmCommand, refreshChanges, toast, toastError, useResource } from "../store.js";
import { INTERCONNECT } from "./network.jsx";
import { SHARE_DIR } from "./storage.jsx";
import {
        batchField, checkInteger, checkName, checkPath, checkSize, Choice, integer, isMac, ListError, MIB_MAX,
        normalMac, sizeMib, SizeField, Summary, useWizardForm, WhenChoice, Wizard,
} from "./wizard.jsx";

const BUSES = ["virtio", "scsi", "sata", "ide"];
const MODELS = ["virtio", "e1000", "rtl8139"];
const DISKS_MAX = 8;
const ISO_EXAMPLE = `${SHARE_DIR}/iso/debian.iso`;
const NICS_MAX = 8;

async function load() {
        const [nodes, disks, vmDisks, networks, vms, nics] = await Promise.all([
                api.listNodes(), api.disks.list(), api.vmDisks.list(), api.networks.list(), api.vms.list(), api.vmNics.list(),
        ]);
        const used = new Set(vmDisks.map((x) => x.disk_id));
        return {
                nodes,
                disks,
                free: disks.filter((x) => !used.has(x.id)),
                networks: networks.filter((n) => n.name !== INTERCONNECT),
                vms,
                macs: nics.map((x) => x.mac).filter(Boolean),
                esan: nodes.filter((n) => n.esan_member).map((n) => n.node_id),
        };
}

const newDisk = (i) => ({ source: "new", kind: "shared", name: "", size: "20", unit: "GiB", path: "", existing: "", bus: "virtio", boot: String(i + 1) });
const newNic = (d) => ({ network: d.networks[0] ? String(d.networks[0].id) : "", model: "virtio", mac: "" });

// A new disk's name and path when left empty: VM-diskN on the share.
const diskName = (v, i) => v.disks[i].name.trim() || `${v.name || "vm"}-disk${i}`;
const diskPath = (v, i) => v.disks[i].path.trim() || `${SHARE_DIR}/${diskName(v, i)}.img`;

function initial(d) {
        return {
                name: "",
                description: "",
                vcpus: "1",
                mem: "1",
                mem_unit: "GiB",
                disks: [newDisk(0)],
                nics: d.networks.length ? [newNic(d)] : [],
                cdrom: "no",
                iso: "",
                ha: "on",
                sticky_node: "",
                preferred: "",
                priority: "500",
                when: "now",
        };
}

function validate(v, d) {
        const e = {
                name: checkName(v.name, d.vms.map((x) => x.name)),
                description: v.description.length <= 1024 ? undefined : t("wizard.setup.too-long"),
                vcpus: checkInteger(v.vcpus, 1, 64),
                mem: checkSize(v.mem, v.mem_unit, 16, 4194304),
                priority: checkInteger(v.priority, 0, 1000),
        };
        const taken = d.disks.map((x) => x.name);
        const names = v.disks.map((x, i) => (x.source === "new" ? diskName(v, i) : null));
        const boots = v.disks.map((x) => String(x.boot).trim()).filter(Boolean);
        v.disks.forEach((x, i) => {
                const p = `disks.${i}`;
                if (x.source === "new") {
                        const name = diskName(v, i);
                        e[`${p}.name`] = checkName(name, taken) ||
                                (names.indexOf(name) !== i ? t("wizard.name-taken") : undefined);
                        e[`${p}.size`] = checkSize(x.size, x.unit, 1, MIB_MAX);
                        if (x.kind === "shared")
                                e[`${p}.path`] = checkPath(diskPath(v, i));
                        else if (d.esan.length !== 2)
                                e[`${p}.kind`] = t("wizard.vm.no-esan");
                } else {
                        e[`${p}.existing`] = !x.existing ? t("wizard.vm.choose-disk")
                                : v.disks.findIndex((y) => y.source === "existing" && y.existing === x.existing) !== i
                                        ? t("wizard.vm.disk-twice") : undefined;
                }
                e[`${p}.boot`] = checkInteger(x.boot, 1, 64, true) ||
                        (String(x.boot).trim() && boots.filter((b) => b === String(x.boot).trim()).length > 1
                                ? t("wizard.vm.boot-unique") : undefined);
        });
        if (!v.disks.length && v.cdrom !== "yes")
                e.disks = t("wizard.vm.need-disk");
        v.nics.forEach((x, i) => {
                const p = `nics.${i}`;
                e[`${p}.network`] = x.network ? undefined : t("wizard.vm.choose-network");
                if (x.mac.trim()) {
                        const mac = normalMac(x.mac);
                        e[`${p}.mac`] = !isMac(mac) ? t("wizard.vm.mac-rule")
                                : d.macs.includes(mac) || v.nics.findIndex((y) => normalMac(y.mac) === mac) !== i
                                        ? t("wizard.vm.mac-taken") : undefined;
                }
        });
        if (v.cdrom === "yes")
                e.iso = checkPath(v.iso.trim());
        if (v.ha === "sticky")
                e.sticky_node = v.sticky_node ? undefined : t("vms.choose-node");
        return e;
}

// The batch: [vm, (new disk?, attachment) per disk, nic..., cdrom?], and
// for each item the form path prefix its fields belong to.
function itemsOf(v, d) {
        const vm = {
                name: v.name,
                vcpus: integer(v.vcpus),
                memory_mib: sizeMib(v.mem, v.mem_unit),
                ha: v.ha,
                preferred_node_id: v.preferred ? Number(v.preferred) : null,
                priority: integer(v.priority),
        };
        if (v.ha === "sticky")
                vm.sticky_node_id = Number(v.sticky_node);
        if (v.description.trim())
                vm.description = v.description.trim();
        const items = [{ resource: "vms", values: vm }];
        const owners = [{ kind: "vm" }];
        v.disks.forEach((x, i) => {
                let disk;
                if (x.source === "new") {
                        const values = { name: diskName(v, i), kind: x.kind, size_mib: sizeMib(x.size, x.unit) };
                        if (x.kind === "shared")
                                values.path = diskPath(v, i);
                        else
                                values.nodes = [...d.esan];
                        disk = { ref: items.length };
                        items.push({ resource: "disks", values });
                        owners.push({ kind: "disk", index: i });
                } else {
                        disk = Number(x.existing);
                }
                const boot = String(x.boot).trim();
                items.push({ resource: "vm-disks", values: { vm_id: { ref: 0 }, disk_id: disk, bus: x.bus, boot_order: boot ? integer(boot) : null } });
                owners.push({ kind: "attach", index: i });
        });
        v.nics.forEach((x, i) => {
                const values = { vm_id: { ref: 0 }, network_id: Number(x.network), model: x.model };
                if (x.mac.trim())
                        values.mac = normalMac(x.mac);
                items.push({ resource: "vm-nics", values });
                owners.push({ kind: "nic", index: i });
        });
        if (v.cdrom === "yes") {
                items.push({ resource: "vm-cdroms", values: { vm_id: { ref: 0 }, iso_path: v.iso.trim() } });
                owners.push({ kind: "cdrom" });
        }
        return { items, owners };
}

const COLUMNS = {
        vm: { name: "name", vcpus: "vcpus", memory_mib: "mem", ha: "ha", preferred_node_id: "preferred", priority: "priority",
                sticky_node_id: "sticky_node", description: "description", _: "name" },
        disk: { name: "name", size_mib: "size", path: "path", kind: "kind", nodes: "kind", _: "name" },
        attach: { disk_id: "existing", bus: "bus", boot_order: "boot", _: "bus" },
        nic: { network_id: "network", mac: "mac", model: "model", _: "network" },
        cdrom: { iso_path: "iso", _: "iso" },
};

// A batch error's field → the form's path.
function pathOf(owner, column, v) {
        const c = COLUMNS[owner.kind][column || "_"] || COLUMNS[owner.kind]._;
        if (owner.kind === "vm" || owner.kind === "cdrom")
                return c;
        if (owner.kind === "attach" && c === "existing" && v.disks[owner.index].source === "new")
                return `disks.${owner.index}.name`;
        return `${owner.kind === "nic" ? "nics" : "disks"}.${owner.index}.${c}`;
}

/* ==== Steps ==== */

function DiskEditor({ form, d, i }) {
        const v = form.values;
        const x = v.disks[i];
        const p = `disks.${i}`;
        const remove = () => form.set("disks", v.disks.filter((_, k) => k !== i));
        return (
                <fieldset class="list-item">
                        <legend>{t("wizard.vm.disk-n", { n: i + 1 })}</legend>
                        <Choice form={form} name={`${p}.source`} legend={t("wizard.vm.disk-source")}
                                choices={[["new", t("wizard.vm.disk-new")], ["existing", t("wizard.vm.disk-existing"), !d.free.length]]} />
                        {x.source === "new" ? (
                                <>
                                        <div class="form-row">
                                                <Field as="select" label={t("col.kind")} {...form.bindSelect(`${p}.kind`)}>
                                                        <option value="shared">{t("disk.kind.shared")}</option>
                                                        <option value="esan" disabled={d.esan.length !== 2}>{t("disk.kind.esan")}</option>
                                                </Field>
                                                <Field label={t("col.name")} placeholder={diskName(v, i)} {...form.bind(`${p}.name`)} />
                                        </div>
                                        <SizeField label={t("col.size")} form={form} name={`${p}.size`} unitName={`${p}.unit`} />
                                        {x.kind === "shared" && <Field label={t("col.path")} placeholder={diskPath(v, i)}
                                                hint={t("wizard.vm.path-hint")} {...form.bind(`${p}.path`)} />}
                                        {x.kind === "esan" && <p class="hint">{t("wizard.vm.esan-hint")}</p>}
                                </>
                        ) : (
                                <Field as="select" label={t("col.disk")} {...form.bindSelect(`${p}.existing`)}>
                                        <option value="">{t("wizard.choose")}</option>
                                        {d.free.map((k) => (
                                                <option key={k.id} value={String(k.id)}>
                                                        {`${k.name} (${t(`disk.kind.${k.kind}`)}, ${formatMiB(k.size_mib)})`}
                                                </option>
                                        ))}
                                </Field>
                        )}
                        <div class="form-row">
                                <Field as="select" label={t("col.bus")} {...form.bindSelect(`${p}.bus`)}>
                                        {BUSES.map((b) => <option key={b} value={b}>{b}</option>)}
                                </Field>
                                <Field label={t("col.boot-order")} inputMode="numeric" hint={t("wizard.vm.boot-hint")} {...form.bind(`${p}.boot`)} />
                        </div>
                        <button type="button" class="danger-text" onClick={remove}
                                aria-label={t("wizard.vm.remove-disk", { n: i + 1 })}>{t("wizard.remove")}</button>
                </fieldset>
        );
}

function NicEditor({ form, d, i }) {
        const v = form.values;
        const p = `nics.${i}`;
        const remove = () => form.set("nics", v.nics.filter((_, k) => k !== i));
        return (
                <fieldset class="list-item">
                        <legend>{t("wizard.vm.nic-n", { n: i + 1 })}</legend>
                        <div class="form-row">
                                <Field as="select" label={t("wizard.vm.switch")} {...form.bindSelect(`${p}.network`)}>
                                        <option value="">{t("wizard.choose")}</option>
                                        {d.networks.map((n) => <option key={n.id} value={String(n.id)}>{n.name}</option>)}
                                </Field>
                                <Field as="select" label={t("col.model")} {...form.bindSelect(`${p}.model`)}>
                                        {MODELS.map((m) => <option key={m} value={m}>{m}</option>)}
                                </Field>
                                <Field label={t("col.mac")} hint={t("wizard.vm.mac-hint")} autocomplete="off" {...form.bind(`${p}.mac`)} />
                        </div>
                        <button type="button" class="danger-text" onClick={remove}
                                aria-label={t("wizard.vm.remove-nic", { n: i + 1 })}>{t("wizard.remove")}</button>
                </fieldset>
        );
}

function NewVm({ d, onClose }) {
        const form = useWizardForm(initial(d), (v) => validate(v, d));
        const [result, setResult] = useState(null);
        const [starting, setStarting] = useState(false);
        const owners = useRef([]);
        const v = form.values;
        const nodeName = (id) => (d.nodes.find((n) => n.node_id === Number(id)) || {}).name || String(id);
        const disksError = form.errorOf("disks");

        const steps = [
                {
                        id: "general",
                        title: t("wizard.vm.general"),
                        fields: ["name", "description", "vcpus", "mem"],
                        render: () => (
                                <>
                                        <Field label={t("col.name")} autocomplete="off" hint={t("form.name-rule")} {...form.bind("name")} />
                                        <div class="form-row">
                                                <Field label={t("col.vcpus")} inputMode="numeric" {...form.bind("vcpus")} />
                                                <SizeField label={t("col.memory")} form={form} name="mem" unitName="mem_unit" />
                                        </div>
                                        <Field as="textarea" rows={2} label={t("vm.description")} {...form.bind("description")} />
                                </>
                        ),
                },
                {
                        id: "disks",
                        title: t("vm.disks"),
                        fields: ["disks"],
                        render: () => (
                                <>
                                        <p>{t("wizard.vm.disks-intro")}</p>
                                        {v.disks.map((_, i) => <DiskEditor key={i} form={form} d={d} i={i} />)}
                                        <ListError form={form} name="disks" />
                                        <button type="button" disabled={v.disks.length >= DISKS_MAX}
                                                aria-invalid={disksError ? "true" : undefined}
                                                aria-describedby={disksError ? "disks-list-error" : undefined}
                                                onClick={() => form.set("disks", [...v.disks, newDisk(v.disks.length)])}>
                                                {t("wizard.vm.add-disk")}
                                        </button>
                                </>
                        ),
                },
                {
                        id: "nics",
                        title: t("vm.nics"),
                        fields: ["nics"],
                        render: () => (
                                <>
                                        <p>{d.networks.length ? t("wizard.vm.nics-intro") : t("wizard.vm.no-networks")}</p>
                                        {v.nics.map((_, i) => <NicEditor key={i} form={form} d={d} i={i} />)}
                                        <button type="button" disabled={!d.networks.length || v.nics.length >= NICS_MAX}
                                                onClick={() => form.set("nics", [...v.nics, newNic(d)])}>{t("wizard.vm.add-nic")}</button>
                                </>
                        ),
                },
                {
                        id: "media",
                        title: t("wizard.vm.media"),
                        fields: ["cdrom", "iso"],
                        render: () => (
                                <>
                                        <Choice form={form} name="cdrom" legend={t("wizard.vm.cdrom")}
                                                choices={[["yes", t("wizard.vm.cdrom-iso")], ["no", t("wizard.vm.cdrom-none")]]} />
                                        {v.cdrom === "yes" && <Field label={t("col.iso")} hint={t("wizard.vm.iso-hint", { dir: SHARE_DIR })}
                                                placeholder={ISO_EXAMPLE} {...form.bind("iso")} />}
                                </>
                        ),
                },
                {
                        id: "ha",
                        title: t("wizard.vm.ha"),
                        fields: ["ha", "sticky_node", "preferred", "priority"],
                        render: () => (
                                <>
                                        <Choice form={form} name="ha" legend={t("col.ha")}
                                                choices={["off", "on", "sticky"].map((m) => [m, t(`wizard.vm.ha.${m}`)])} />
                                        {v.ha === "sticky" && (
                                                <Field as="select" label={t("vm.sticky-node")} {...form.bindSelect("sticky_node")}>
                                                        <option value="">{t("wizard.choose")}</option>
                                                        {d.nodes.map((n) => <option key={n.node_id} value={String(n.node_id)}>{n.name}</option>)}
                                                </Field>
                                        )}
                                        <div class="form-row">
                                                <Field as="select" label={t("col.preferred")} hint={t("vms.prefer-hint")} {...form.bindSelect("preferred")}>
                                                        <option value="">{t("vms.no-preference")}</option>
                                                        {d.nodes.map((n) => <option key={n.node_id} value={String(n.node_id)}>{n.name}</option>)}
                                                </Field>
                                                <Field label={t("vm.priority")} inputMode="numeric" hint={t("wizard.vm.priority-hint")} {...form.bind("priority")} />
                                        </div>
                                        {v.disks.some((x) => x.source === "new" && x.kind === "esan") &&
                                                <p class="hint">{t("wizard.vm.esan-nodes", { nodes: d.esan.map(nodeName).join(", ") })}</p>}
                                </>
                        ),
                },
                {
                        id: "summary",
                        title: t("wizard.summary"),
                        fields: ["when"],
                        render: () => {
                                const mib = sizeMib(v.mem, v.mem_unit);
                                return (
                                        <>
                                                <Summary items={[
                                                        [t("col.name"), v.name],
                                                        [t("wizard.vm.cpu-memory"), t("wizard.vm.cpu-memory-value",
                                                                { vcpus: formatNumber(integer(v.vcpus)), memory: formatMiB(mib) })],
                                                        ...v.disks.map((x, i) => [t("wizard.vm.disk-n", { n: i + 1 }), x.source === "new"
                                                                ? t("wizard.vm.disk-new-value", { name: diskName(v, i), kind: t(`disk.kind.${x.kind}`),
                                                                        size: formatMiB(sizeMib(x.size, x.unit)), bus: x.bus })
                                                                : t("wizard.vm.disk-existing-value", {
                                                                        name: (d.free.find((k) => String(k.id) === x.existing) || {}).name || "?", bus: x.bus })]),
                                                        ...v.nics.map((x, i) => [t("wizard.vm.nic-n", { n: i + 1 }),
                                                                `${(d.networks.find((n) => String(n.id) === x.network) || {}).name || "?"} · ${x.model}${x.mac ? ` · ${normalMac(x.mac)}` : ""}`]),
                                                        v.cdrom === "yes" && [t("col.iso"), v.iso],
                                                        [t("col.ha"), t(`vm.ha.${v.ha}`) + (v.ha === "sticky" ? ` (${nodeName(v.sticky_node)})` : "")],
                                                        [t("col.preferred"), v.preferred ? nodeName(v.preferred) : t("vms.no-preference")],
                                                        [t("vm.priority"), v.priority],
                                                ]} />
                                                <WhenChoice form={form} />
                                        </>
                                );
                        },
                },
        ];

        const finish = async () => {
                const x = itemsOf(form.latest.current, d);
                owners.current = x.owners;
                const r = await api.batch(x.items, { now: form.latest.current.when === "now" });
                if (!r.ids)
                        await refreshChanges();
                setResult({ ...r, name: form.latest.current.name });
        };
        const mapError = (field) => {
                const f = batchField(field);
                const owner = f && owners.current[f[0]];
                return owner ? pathOf(owner, f[1], form.latest.current) : null;
        };
        const start = async () => {
                setStarting(true);
                try {
                        const id = result.ids[0];
                        const accepted = await api.vmCommand(id, "start");
                        const label = t("vm.command.label", { command: t("vm.action.start"), name: result.name });
                        toast("info", t("vm.command.sent", { what: label }));
                        followVmCommand(accepted, label);
                        onClose();
                        navigate("vm", { id });
                } catch (e) {
                        toastError(e);
                        setStarting(false);
                }
        };
        return (
                <Wizard title={t("wizard.vm.title")} steps={steps} form={form} onClose={onClose} onFinish={finish}
                        mapError={mapError} finishLabel={form.values.when === "now" ? t("wizard.vm.create") : t("common.stage")}
                        closeLabel={result && result.ids ? t("wizard.vm.not-now") : undefined}
                        done={result && {
                                title: t("wizard.done"),
                                render: () => (
                                        <p role="status">{result.ids ? t("wizard.vm.done-now", { name: result.name })
                                                : t("wizard.vm.done-staged", { name: result.name })}</p>
                                ),
                                actions: result.ids && (
                                        <button type="button" class="primary" disabled={starting} onClick={start}>
                                                {t("wizard.vm.start", { name: result.name })}
                                        </button>
                                ),
                        }} />
        );
}

export function NewVmWizard({ onClose }) {
        const data = useResource(load, [], []);
        if (!data.data)
                return (
                        <Dialog title={t("wizard.vm.title")} onClose={onClose}>
                                {data.error ? <ErrorBox error={data.error} onRetry={data.reload} /> : <Loading />}
                        </Dialog>
                );
        return <NewVm d={data.data} onClose={onClose} />;
}
