// SPDX-License-Identifier: LGPL-2.1-or-later
// The storage wizard: which two nodes hold the eSAN (nodes.esan_member), a
// new eSAN disk replicated between them, and a disk on the cluster share
// (a shared disk below /srv/haven/shared: the schema has no share setting
// of its own). Finish writes one batch (POST /batch): the nodes whose
// membership changes (with the version they were read at) and the disks.

import { useRef, useState } from "preact/hooks";
import * as api from "../api.js";
import { Dialog, ErrorBox, Field, Loading } from "../components/ui.jsx";
import { formatMiB, t } from "../i18n.js";
import { refreshChanges, useResource } from "../store.js";
import {
        batchField, checkName, checkPath, checkSize, Choice, ListError, MIB_MAX, sizeMib, SizeField, Summary,
        useWizardForm, WhenChoice, Wizard,
} from "./wizard.jsx";

export const SHARE_DIR = "/srv/haven/shared";

async function load() {
        const [nodes, disks] = await Promise.all([api.listNodes(), api.disks.list()]);
        return { nodes, disks };
}

const unique = (base, taken) => {
        let name = base;
        for (let i = 2; taken.includes(name); i++)
                name = `${base}${i}`;
        return name;
};

function initial(d) {
        const taken = d.disks.map((x) => x.name);
        const members = d.nodes.filter((n) => n.esan_member).map((n) => n.node_id);
        return {
                esan_nodes: members.length === 2 ? members : d.nodes.slice(0, 2).map((n) => n.node_id),
                esan_create: "yes",
                esan_name: unique("esan", taken),
                esan_size: "20",
                esan_unit: "GiB",
                share_create: "no",
                share_name: unique("shared", taken),
                share_size: "20",
                share_unit: "GiB",
                share_dir: SHARE_DIR,
                when: "staged",
        };
}

const sharePath = (v) => `${v.share_dir.replace(/\/+$/, "")}/${v.share_name}.img`;

function validate(v, d) {
        const taken = d.disks.map((x) => x.name);
        const e = {};
        const chosen = v.esan_nodes;
        if (chosen.length !== 0 && chosen.length !== 2)
                e.esan_nodes = t("wizard.storage.two-nodes");
        for (const disk of d.disks)
                if (disk.kind === "esan" && (disk.nodes || []).some((n) => !chosen.includes(n)))
                        e.esan_nodes = t("wizard.storage.disk-holds", { name: disk.name });
        if (v.esan_create === "yes") {
                if (chosen.length !== 2)
                        e.esan_create = t("wizard.storage.choose-nodes-first");
                e.esan_name = checkName(v.esan_name, [...taken, ...(v.share_create === "yes" ? [v.share_name] : [])]);
                e.esan_size = checkSize(v.esan_size, v.esan_unit, 1, MIB_MAX);
        }
        if (v.share_create === "yes") {
                e.share_name = checkName(v.share_name, [...taken, ...(v.esan_create === "yes" ? [v.esan_name] : [])]);
                e.share_size = checkSize(v.share_size, v.share_unit, 1, MIB_MAX);
                e.share_dir = checkPath(v.share_dir) || checkPath(sharePath(v));
        }
        return e;
}

// The batch's items and what each stands for (for errors).
function itemsOf(v, d) {
        const items = [], kinds = [];
        for (const n of d.nodes) {
                const want = v.esan_nodes.includes(n.node_id);
                if (!!n.esan_member !== want) {
                        items.push({ resource: "nodes", id: n.id, version: n.version, values: { esan_member: want } });
                        kinds.push("node");
                }
        }
        if (v.esan_create === "yes") {
                items.push({
                        resource: "disks",
                        values: { name: v.esan_name, kind: "esan", size_mib: sizeMib(v.esan_size, v.esan_unit), nodes: [...v.esan_nodes] },
                });
                kinds.push("esan");
        }
        if (v.share_create === "yes") {
                items.push({
                        resource: "disks",
                        values: { name: v.share_name, kind: "shared", size_mib: sizeMib(v.share_size, v.share_unit), path: sharePath(v) },
                });
                kinds.push("share");
        }
        return { items, kinds };
}

const FIELDS = {
        node: { esan_member: "esan_nodes" },
        esan: { name: "esan_name", size_mib: "esan_size", nodes: "esan_nodes", kind: "esan_create" },
        share: { name: "share_name", size_mib: "share_size", path: "share_dir", kind: "share_create" },
};

function StorageWizardSteps({ d, onClose }) {
        const form = useWizardForm(initial(d), (v) => validate(v, d));
        const [result, setResult] = useState(null);
        const kinds = useRef([]);
        const v = form.values;
        const nodeName = (id) => (d.nodes.find((n) => n.node_id === id) || {}).name || String(id);
        const toggle = (id) => form.set("esan_nodes", v.esan_nodes.includes(id)
                ? v.esan_nodes.filter((x) => x !== id) : [...v.esan_nodes, id]);
        const pair = v.esan_nodes.length === 2 ? v.esan_nodes.map(nodeName).join(t("wizard.and")) : null;
        const nodesError = form.errorOf("esan_nodes");

        const steps = [
                {
                        id: "nodes",
                        title: t("wizard.storage.nodes"),
                        fields: ["esan_nodes"],
                        render: () => (
                                <>
                                        <p>{t("wizard.storage.nodes-intro")}</p>
                                        <fieldset class={`choice${nodesError ? " field-invalid" : ""}`}>
                                                <legend>{t("wizard.storage.esan-nodes")}</legend>
                                                {d.nodes.map((n) => (
                                                        <label class="inline" key={n.node_id}>
                                                                <input type="checkbox" checked={v.esan_nodes.includes(n.node_id)}
                                                                        aria-invalid={nodesError ? "true" : undefined}
                                                                        aria-describedby={nodesError ? "esan_nodes-list-error" : undefined}
                                                                        onChange={() => toggle(n.node_id)} />
                                                                {n.name}
                                                        </label>
                                                ))}
                                                <ListError form={form} name="esan_nodes" />
                                        </fieldset>
                                        <p class="hint">{t("wizard.storage.nodes-hint")}</p>
                                </>
                        ),
                },
                {
                        id: "esan",
                        title: t("wizard.storage.esan-disk"),
                        fields: ["esan_create", "esan_name", "esan_size"],
                        render: () => (
                                <>
                                        <p>{pair ? t("wizard.storage.esan-intro", { nodes: pair }) : t("wizard.storage.no-pair")}</p>
                                        <Choice form={form} name="esan_create" legend={t("wizard.storage.esan-disk")}
                                                choices={[["yes", t("wizard.storage.create-esan"), !pair], ["no", t("wizard.storage.no-disk")]]} />
                                        {v.esan_create === "yes" && (
                                                <>
                                                        <Field label={t("col.name")} {...form.bind("esan_name")} />
                                                        <SizeField label={t("col.size")} form={form} name="esan_size" unitName="esan_unit" />
                                                </>
                                        )}
                                </>
                        ),
                },
                {
                        id: "share",
                        title: t("wizard.storage.share"),
                        fields: ["share_create", "share_name", "share_size", "share_dir"],
                        render: () => (
                                <>
                                        <p>{t("wizard.storage.share-intro", { dir: SHARE_DIR })}</p>
                                        <Choice form={form} name="share_create" legend={t("wizard.storage.share")}
                                                choices={[["yes", t("wizard.storage.create-share")], ["no", t("wizard.storage.no-disk")]]} />
                                        {v.share_create === "yes" && (
                                                <>
                                                        <Field label={t("col.name")} {...form.bind("share_name")} />
                                                        <SizeField label={t("col.size")} form={form} name="share_size" unitName="share_unit" />
                                                        <Field label={t("wizard.storage.share-dir")}
                                                                hint={t("wizard.storage.path-is", { path: sharePath(v) })} {...form.bind("share_dir")} />
                                                </>
                                        )}
                                </>
                        ),
                },
                {
                        id: "summary",
                        title: t("wizard.summary"),
                        fields: ["when"],
                        render: () => {
                                const { items } = itemsOf(v, d);
                                return (
                                        <>
                                                {items.length === 0 ? <p>{t("wizard.nothing")}</p> : (
                                                        <Summary items={items.map((x) => (x.resource === "nodes"
                                                                ? [t(x.values.esan_member ? "wizard.storage.join-esan" : "wizard.storage.leave-esan",
                                                                        { node: nodeName(d.nodes.find((n) => n.id === x.id).node_id) }), ""]
                                                                : [t("wizard.storage.add-disk", { name: x.values.name }),
                                                                        [t(`disk.kind.${x.values.kind}`), formatMiB(x.values.size_mib),
                                                                                x.values.path || (x.values.nodes || []).map(nodeName).join(", ")].join(" · ")]))} />
                                                )}
                                                <WhenChoice form={form} />
                                        </>
                                );
                        },
                },
        ];

        const finish = async () => {
                const x = itemsOf(form.latest.current, d);
                if (!x.items.length)
                        throw new Error(t("wizard.nothing"));
                kinds.current = x.kinds;
                const r = await api.batch(x.items, { now: form.latest.current.when === "now" });
                if (!r.ids)
                        await refreshChanges();
                setResult(r);
        };
        const mapError = (field) => {
                const f = batchField(field);
                if (!f)
                        return null;
                const kind = kinds.current[f[0]];
                return (kind && f[1] && FIELDS[kind][f[1]]) || (kind === "node" ? "esan_nodes" : null);
        };
        return (
                <Wizard title={t("wizard.storage.title")} steps={steps} form={form} onClose={onClose} onFinish={finish}
                        mapError={mapError}
                        done={result && {
                                title: t("wizard.done"),
                                render: () => <p role="status">{result.ids ? t("wizard.storage.done-now") : t("wizard.done-staged")}</p>,
                        }} />
        );
}

export function StorageWizard({ onClose }) {
        const data = useResource(load, [], []);
        if (!data.data)
                return (
                        <Dialog title={t("wizard.storage.title")} onClose={onClose}>
                                {data.error ? <ErrorBox error={data.error} onRetry={data.reload} /> : <Loading />}
                        </Dialog>
                );
        return <StorageWizardSteps d={data.data} onClose={onClose} />;
}
