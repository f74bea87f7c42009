// SPDX-License-Identifier: LGPL-2.1-or-later
// The cluster network wizard: the interconnect (its interfaces with their
// link state, bonding, MTU with jumbo frames, VLAN; this node's cluster
// network address), an end-to-end check of that MTU to every other node
// (POST /wizard/network-check), and the interface for VM traffic, which
// becomes a virtual switch. Finish writes one batch (POST /batch): the
// network "interconnect" (added or changed) and the new switch. Also the
// interfaces table the setup wizard shows.

import { useState } from "preact/hooks";
import * as api from "../api.js";
import { Badge, Checkbox, Dialog, ErrorBox, Field, Loading, Table } from "../components/ui.jsx";
import { formatNumber, t } from "../i18n.js";
import { refreshChanges, useResource } from "../store.js";
import {
        batchField, checkInteger, checkName, Choice, integer, isIp, Summary, useWizardForm, WhenChoice, Wizard,
} from "./wizard.jsx";

export const INTERCONNECT = "interconnect";
export const BONDING_MODES = ["active-backup", "balance-rr", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"];
const JUMBO = 9000;

/* ==== Interfaces ==== */

// Addresses worth showing: not IPv6 link-local.
export const shownAddresses = (x) => (x.addresses || []).filter((a) => !/^fe80:/i.test(a.address));

// This node's interfaces: link, speed, MTU, MAC, addresses. With
// selected/onToggle each row has a checkbox (name: the group's label).
export function InterfacesTable({ interfaces, caption, selected, onToggle, error, errorId }) {
        const list = interfaces.filter((x) => x.kind !== "loopback");
        const head = [t("col.interface"), t("col.kind"), t("col.link"), t("col.speed"), t("col.mtu"), t("col.mac"), t("col.addresses")];
        return (
                <Table caption={caption} empty={t("wizard.net.no-interfaces")}
                        head={onToggle ? [t("col.use"), ...head] : head}>
                        {list.map((x) => (
                                <tr key={x.name}>
                                        {onToggle && (
                                                <td>
                                                        <input type="checkbox" checked={selected.includes(x.name)}
                                                                aria-label={t("wizard.net.use-interface", { name: x.name })}
                                                                aria-invalid={error ? "true" : undefined}
                                                                aria-describedby={error ? errorId : undefined}
                                                                onChange={() => onToggle(x.name)} />
                                                </td>
                                        )}
                                        <th scope="row">{x.name}{x.master && <span class="muted"> {t("wizard.net.in", { master: x.master })}</span>}</th>
                                        <td>{t(`iface.kind.${x.kind || "virtual"}`)}</td>
                                        <td>{x.link === "up" ? <Badge tone="ok">{t("iface.link.up")}</Badge> : <Badge tone="bad">{t("iface.link.down")}</Badge>}</td>
                                        <td>{x.speed_mbps ? t("unit.mbps", { n: formatNumber(x.speed_mbps) }) : "—"}</td>
                                        <td>{x.mtu ? formatNumber(x.mtu) : "—"}</td>
                                        <td><code>{x.mac || "—"}</code></td>
                                        <td>{shownAddresses(x).map((a) => `${a.address}/${a.prefix}`).join(", ") || "—"}</td>
                                </tr>
                        ))}
                </Table>
        );
}

// A choice of interfaces with its problem shown below it.
function InterfacePicker({ form, name, interfaces, caption }) {
        const selected = form.get(name) || [];
        const error = form.errorOf(name);
        const id = `${name}-error`;
        const toggle = (n) => form.set(name, selected.includes(n) ? selected.filter((x) => x !== n) : [...selected, n]);
        return (
                <div class={`field${error ? " field-invalid" : ""}`}>
                        <InterfacesTable interfaces={interfaces} caption={caption} selected={selected} onToggle={toggle}
                                error={error} errorId={id} />
                        {error && <p class="field-error" id={id}>{error}</p>}
                </div>
        );
}

// MTU with the jumbo frames switch and the warning that goes with them.
function MtuField({ form, name, label }) {
        const mtu = integer(form.get(name));
        return (
                <>
                        <Checkbox label={t("wizard.net.jumbo")} checked={mtu === JUMBO}
                                onChange={(e) => form.set(name, String(e.currentTarget.checked ? JUMBO : 1500))} />
                        <Field label={label} inputMode="numeric" hint={t("wizard.net.mtu-hint")} {...form.bind(name)} />
                        {mtu > 1500 && <p class="warning-text" role="note">{t("wizard.net.jumbo-warning")}</p>}
                </>
        );
}

function BondingField({ form, name, count }) {
        if (count < 2)
                return <p class="hint">{t("wizard.net.bonding-one")}</p>;
        return (
                <Field as="select" label={t("col.bonding")} {...form.bindSelect(name)}>
                        {BONDING_MODES.map((m) => <option key={m} value={m}>{t(`bonding.${m}`)}</option>)}
                </Field>
        );
}

/* ==== The path check ==== */

function CheckResult({ result }) {
        if (!result)
                return <span class="muted">—</span>;
        if (result.running)
                return <span role="status"><progress aria-label={t("wizard.net.checking")} /> {t("wizard.net.checking")}</span>;
        if (result.error)
                return <Badge tone="bad">{result.error}</Badge>;
        // In the UI's language where the answer's numbers say it all;
        // ping's own complaint (a name it cannot resolve...) as it is.
        let text = result.message;
        if (result.ok)
                text = result.rtt_avg_ms !== null && result.rtt_avg_ms !== undefined
                        ? t("wizard.net.rtt", { ms: formatNumber(result.rtt_avg_ms) }) : "";
        else if (result.path_mtu)
                text = t("wizard.net.path-mtu", { mtu: formatNumber(result.path_mtu) });
        else if (result.transmitted > 0)
                text = t("wizard.net.frames-back", { received: result.received, transmitted: result.transmitted });
        return (
                <span>
                        {result.ok ? <Badge tone="ok">{t("wizard.net.check-ok")}</Badge> : <Badge tone="bad">{t("wizard.net.check-failed")}</Badge>}
                        {text ? ` ${text}` : ""}
                </span>
        );
}

function PathCheck({ form, others, mtu }) {
        const [results, setResults] = useState({});
        const check = async (address) => {
                setResults((r) => ({ ...r, [address]: { running: true } }));
                try {
                        const r = await api.networkCheck(address, mtu);
                        setResults((x) => ({ ...x, [address]: r }));
                        return r;
                } catch (e) {
                        setResults((x) => ({ ...x, [address]: { error: e.message } }));
                        throw e;
                }
        };
        const checkAll = async () => {
                for (const n of others)
                        if (n.address)
                                await check(n.address).catch(() => {});
        };
        const checkOther = async () => {
                const address = form.get("check_address").trim();
                if (!isIp(address)) {
                        form.setServer("check_address", t("infra.address-rule"));
                        return;
                }
                try {
                        await check(address);
                } catch (e) {
                        if (e instanceof api.ApiError && e.field === "address")
                                form.setServer("check_address", e.message);
                }
        };
        const other = form.get("check_address").trim();
        return (
                <>
                        <p>{t("wizard.net.check-intro", { mtu: formatNumber(mtu) })}</p>
                        {others.length === 0 && <p class="muted">{t("wizard.net.no-other-nodes")}</p>}
                        {others.length > 0 && (
                                <>
                                        <Table caption={t("wizard.net.check-title")} head={[t("col.node"), t("col.address"), t("col.result")]}>
                                                {others.map((n) => (
                                                        <tr key={n.name}>
                                                                <th scope="row">{n.name}</th>
                                                                <td>{n.address || "—"}</td>
                                                                <td><CheckResult result={results[n.address]} /></td>
                                                        </tr>
                                                ))}
                                        </Table>
                                        <p><button type="button" onClick={checkAll}>{t("wizard.net.check-all")}</button></p>
                                </>
                        )}
                        <div class="inline-form">
                                <Field label={t("wizard.net.check-address")} {...form.bind("check_address")} />
                                <button type="button" onClick={checkOther}>{t("wizard.net.check")}</button>
                        </div>
                        {other && results[other] && <p><CheckResult result={results[other]} /></p>}
                </>
        );
}

/* ==== The wizard ==== */

async function load() {
        const [ifs, nodes, networks, status] = await Promise.all([
                api.interfaces(),
                api.listNodes(),
                api.networks.list(),
                api.getStatus(),
        ]);
        return { interfaces: ifs.interfaces || [], nodes, networks, status };
}

// The interface that carries address, or null.
const interfaceWith = (interfaces, address) =>
        interfaces.find((x) => (x.addresses || []).some((a) => a.address === address)) || null;

function initial(d) {
        const me = d.nodes.find((n) => n.node_id === d.status.node_id) || null;
        const existing = d.networks.find((n) => n.name === INTERCONNECT) || null;
        const carrier = me && me.addresses && me.addresses[0] ? interfaceWith(d.interfaces, me.addresses[0]) : null;
        const taken = d.networks.map((n) => n.name);
        let vmName = "vmnet";
        for (let i = 2; taken.includes(vmName); i++)
                vmName = `vmnet${i}`;
        return {
                ic_uplinks: existing ? [...(existing.uplinks || [])] : (carrier ? [carrier.name] : []),
                ic_bonding: existing && existing.bonding_mode !== "none" ? existing.bonding_mode : "active-backup",
                ic_mtu: String(existing ? existing.mtu : (carrier && carrier.mtu) || 1500),
                ic_vlan: existing && existing.vlan_id ? String(existing.vlan_id) : "",
                check_address: "",
                vm_create: "yes",
                vm_uplinks: [],
                vm_name: vmName,
                vm_bonding: "active-backup",
                vm_vlan: "",
                vm_mtu: "1500",
                when: "staged",
        };
}

function validate(v, d) {
        const taken = [INTERCONNECT, ...d.networks.map((n) => n.name)];
        const e = {
                ic_uplinks: v.ic_uplinks.length ? undefined : t("wizard.net.choose-interface"),
                ic_mtu: checkInteger(v.ic_mtu, 576, 9000),
                ic_vlan: checkInteger(v.ic_vlan, 1, 4094, true),
        };
        if (v.vm_create === "yes") {
                e.vm_uplinks = v.vm_uplinks.length ? undefined : t("wizard.net.choose-interface");
                e.vm_name = checkName(v.vm_name, taken);
                e.vm_mtu = checkInteger(v.vm_mtu, 576, 9000);
                e.vm_vlan = checkInteger(v.vm_vlan, 1, 4094, true);
        }
        return e;
}

const networkValues = (uplinks, bonding, vlan, mtu) => ({
        uplinks,
        bonding_mode: uplinks.length > 1 ? bonding : "none",
        vlan_id: String(vlan).trim() ? integer(vlan) : null,
        mtu: integer(mtu),
});

// The batch's items for the values: [interconnect, switch?].
function itemsOf(v, d) {
        const existing = d.networks.find((n) => n.name === INTERCONNECT);
        const ic = networkValues(v.ic_uplinks, v.ic_bonding, v.ic_vlan, v.ic_mtu);
        const items = [existing
                ? { resource: "networks", id: existing.id, version: existing.version, values: ic }
                : { resource: "networks", values: { name: INTERCONNECT, ...ic } }];
        if (v.vm_create === "yes")
                items.push({
                        resource: "networks",
                        values: { name: v.vm_name, ...networkValues(v.vm_uplinks, v.vm_bonding, v.vm_vlan, v.vm_mtu) },
                });
        return items;
}

const FIELD_OF = { uplinks: "uplinks", bonding_mode: "bonding", vlan_id: "vlan", mtu: "mtu", name: "name" };

function NetworkWizard({ d, onClose }) {
        const form = useWizardForm(initial(d), (v) => validate(v, d));
        const [result, setResult] = useState(null);
        const v = form.values;
        const me = d.nodes.find((n) => n.node_id === d.status.node_id) || null;
        const others = d.nodes.filter((n) => !me || n.node_id !== me.node_id)
                .map((n) => ({ name: n.name, address: (n.addresses || [])[0] || null }));
        const mtu = integer(v.ic_mtu);
        const existing = d.networks.find((n) => n.name === INTERCONNECT);

        const steps = [
                {
                        id: "interconnect",
                        title: t("wizard.net.interconnect"),
                        fields: ["ic_uplinks", "ic_mtu", "ic_vlan"],
                        render: () => (
                                <>
                                        <p>{t("wizard.net.interconnect-intro")}</p>
                                        <InterfacePicker form={form} name="ic_uplinks" interfaces={d.interfaces}
                                                caption={t("wizard.net.interconnect-interfaces")} />
                                        <div class="form-row">
                                                <BondingField form={form} name="ic_bonding" count={v.ic_uplinks.length} />
                                                <Field label={t("wizard.net.vlan")} inputMode="numeric" hint={t("wizard.net.vlan-hint")} {...form.bind("ic_vlan")} />
                                        </div>
                                        <MtuField form={form} name="ic_mtu" label={t("col.mtu")} />
                                        <p>{me && me.addresses && me.addresses.length
                                                ? t("wizard.net.address-is", { node: me.name, address: me.addresses.join(", ") })
                                                : t("wizard.net.address-unknown")}</p>
                                </>
                        ),
                },
                {
                        id: "check",
                        title: t("wizard.net.check-title"),
                        fields: [],
                        render: () => <PathCheck form={form} others={others} mtu={Number.isNaN(mtu) ? 1500 : mtu} />,
                },
                {
                        id: "vm",
                        title: t("wizard.net.vm-title"),
                        fields: ["vm_uplinks", "vm_name", "vm_mtu", "vm_vlan"],
                        render: () => (
                                <>
                                        <p>{t("wizard.net.vm-intro")}</p>
                                        <Choice form={form} name="vm_create" legend={t("wizard.net.vm-switch")}
                                                choices={[["yes", t("wizard.net.vm-create")], ["no", t("wizard.net.vm-skip")]]} />
                                        {v.vm_create === "yes" && (
                                                <>
                                                        <InterfacePicker form={form} name="vm_uplinks" interfaces={d.interfaces}
                                                                caption={t("wizard.net.vm-interfaces")} />
                                                        {v.vm_uplinks.some((x) => v.ic_uplinks.includes(x)) &&
                                                                <p class="warning-text" role="note">{t("wizard.net.shared-warning")}</p>}
                                                        <div class="form-row">
                                                                <Field label={t("wizard.net.switch-name")} {...form.bind("vm_name")} />
                                                                <BondingField form={form} name="vm_bonding" count={v.vm_uplinks.length} />
                                                                <Field label={t("wizard.net.vlan")} inputMode="numeric" hint={t("wizard.net.vlan-hint")} {...form.bind("vm_vlan")} />
                                                        </div>
                                                        <MtuField form={form} name="vm_mtu" label={t("col.mtu")} />
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
                                const items = itemsOf(v, d);
                                const describe = (x) => [x.uplinks.join(", "), t(`bonding.${x.bonding_mode}`),
                                        x.vlan_id ? t("wizard.net.vlan-n", { id: x.vlan_id }) : t("networks.untagged"),
                                        t("wizard.net.mtu-n", { mtu: formatNumber(x.mtu) })].join(" · ");
                                return (
                                        <>
                                                <Summary items={[
                                                        [existing ? t("wizard.net.change-interconnect") : t("wizard.net.add-interconnect"), describe(items[0].values)],
                                                        items[1] && [t("wizard.net.add-switch", { name: items[1].values.name }), describe(items[1].values)],
                                                ]} />
                                                <p class="hint">{t("wizard.net.stored-hint")}</p>
                                                <WhenChoice form={form} />
                                        </>
                                );
                        },
                },
        ];

        const finish = async () => {
                const r = await api.batch(itemsOf(form.latest.current, d), { now: form.latest.current.when === "now" });
                if (!r.ids)
                        await refreshChanges();
                setResult(r);
        };
        const mapError = (field) => {
                const f = batchField(field);
                if (!f)
                        return null;
                const [item, column] = f;
                const prefix = item === 0 ? "ic_" : "vm_";
                return column && FIELD_OF[column] && !(item === 0 && column === "name") ? `${prefix}${FIELD_OF[column]}` : null;
        };
        return (
                <Wizard title={t("wizard.net.title")} steps={steps} form={form} onClose={onClose} onFinish={finish}
                        mapError={mapError}
                        done={result && {
                                title: t("wizard.done"),
                                render: () => <p role="status">{result.ids ? t("wizard.net.done-now") : t("wizard.done-staged")}</p>,
                        }} />
        );
}

// The wizard in its dialog, once this node's interfaces and the cluster's
// networks are read.
export function ClusterNetworkWizard({ onClose }) {
        const data = useResource(load, [], []);
        if (!data.data)
                return (
                        <Dialog title={t("wizard.net.title")} onClose={onClose}>
                                {data.error ? <ErrorBox error={data.error} onRetry={data.reload} /> : <Loading />}
                        </Dialog>
                );
        return <NetworkWizard d={data.data} onClose={onClose} />;
}
