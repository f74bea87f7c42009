// SPDX-License-Identifier: LGPL-2.1-or-later
// The cluster setup wizard, a page of its own (#/setup) so that it works
// before anybody can log in: a configuration backup (with a session), this
// node as the first node of a new cluster or as an additional one (its
// cluster network address from GET /wizard/interfaces; cluster-create or
// cluster-join, then a login with the administrator given), the fencing
// device (APC over SNMP, a fence agent with its parameters, or manual;
// tested with POST /fence-devices/test before it is added) with this
// node's outlet, and the mail relay. Finish writes the device and the
// outlet as one batch and the mail settings (PATCH /infrastructure), at
// once: a new cluster has nothing running to stage around.

import { useEffect, useRef, useState } from "preact/hooks";
import * as api from "../api.js";
import { LanguageSelect } from "../components/shell.jsx";
import { Badge, Checkbox, ErrorBox, Facts, Field, Loading, Table } from "../components/ui.jsx";
import { formatDuration, formatNumber, t } from "../i18n.js";
import { href, navigate } from "../router.js";
import { app, login, useLanguage, useStore } from "../store.js";
import { InterfacesTable, shownAddresses } from "./network.jsx";
import { batchField, checkInteger, checkName, Choice, isHost, isIp, useWizardForm, Wizard } from "./wizard.jsx";

const OUTLET_RULE = /^[A-Za-z0-9._:/-]{1,63}$/;
const EMAIL_RULE = /^[^@\s]+@[^@\s]+$/;
const RELAY_RULE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(:\d{1,5})?$/;

/* ==== Fence device definitions ==== */

// Protocol names, the same in every language.
const SNMP_VERSIONS = [["1", "SNMPv1"], ["2c", "SNMPv2c"], ["3", "SNMPv3"]];
const AUTH_PROTOCOLS = ["SHA", "MD5"];
const PRIV_PROTOCOLS = ["AES", "DES"];

const APC_FIELDS = {
        snmp_version: "snmp_version", community: "community", username: "snmp_user",
        security_level: "security_level", auth_protocol: "auth_protocol", auth_password: "auth_password",
        priv_protocol: "priv_protocol", priv_password: "priv_password", port: "snmp_port",
};

// The device as the API takes it: {name, type, address, parameters}.
export function deviceOf(v) {
        const parameters = {};
        if (v.dev_type === "apc-snmp") {
                parameters.snmp_version = v.snmp_version;
                if (v.snmp_version === "3") {
                        parameters.username = v.snmp_user;
                        parameters.security_level = v.security_level;
                        if (v.security_level !== "noAuthNoPriv") {
                                parameters.auth_protocol = v.auth_protocol;
                                parameters.auth_password = v.auth_password;
                        }
                        if (v.security_level === "authPriv") {
                                parameters.priv_protocol = v.priv_protocol;
                                parameters.priv_password = v.priv_password;
                        }
                } else if (v.community) {
                        parameters.community = v.community;
                }
                if (String(v.snmp_port).trim() && Number(v.snmp_port) !== 161)
                        parameters.port = Number(v.snmp_port);
        } else if (v.dev_type === "fence-agent") {
                parameters.agent = v.agent;
                for (const [k, x] of Object.entries(v.agent_params || {})) {
                        const type = (v.agent_types || {})[k];
                        if (type === "boolean") {
                                if (x)
                                        parameters[k] = true;
                        } else if (String(x).trim() !== "") {
                                parameters[k] = type === "integer" ? Number(x) : String(x);
                        }
                }
        }
        return {
                name: v.dev_name,
                type: v.dev_type,
                address: v.dev_address.trim() ? v.dev_address.trim() : null,
                parameters,
        };
}

// A device parameter (or field) of the API → the form's path.
function deviceField(name, v) {
        if (name === "name")
                return "dev_name";
        if (name === "address")
                return "dev_address";
        if (name === "type")
                return "dev_type";
        if (v.dev_type === "apc-snmp" && APC_FIELDS[name])
                return APC_FIELDS[name];
        if (v.dev_type === "fence-agent") {
                if (name === "agent")
                        return "agent";
                if (Object.prototype.hasOwnProperty.call(v.agent_params || {}, name))
                        return `agent_params.${name}`;
        }
        return null;
}

function validateDevice(v, devices) {
        const e = {};
        if (v.fence === "later")
                return e;
        if (v.fence === "existing") {
                e.fence_device = v.fence_device ? undefined : t("wizard.setup.choose-device");
        } else {
                e.dev_name = checkName(v.dev_name, devices.map((d) => d.name));
                if (v.dev_type === "apc-snmp") {
                        e.dev_address = isHost(v.dev_address.trim()) ? undefined : t("wizard.setup.host-rule");
                        if (v.snmp_version === "3") {
                                e.snmp_user = v.snmp_user.length >= 1 && v.snmp_user.length <= 32 ? undefined : t("wizard.setup.user-rule");
                                if (v.security_level !== "noAuthNoPriv")
                                        e.auth_password = v.auth_password.length >= 8 && v.auth_password.length <= 128
                                                ? undefined : t("wizard.setup.snmp-password-rule");
                                if (v.security_level === "authPriv")
                                        e.priv_password = v.priv_password.length >= 8 && v.priv_password.length <= 128
                                                ? undefined : t("wizard.setup.snmp-password-rule");
                        } else {
                                e.community = v.community.length >= 1 && v.community.length <= 64
                                        ? undefined : t("wizard.setup.community-rule");
                        }
                        e.snmp_port = checkInteger(v.snmp_port, 1, 65535, true);
                } else if (v.dev_type === "fence-agent") {
                        e.agent = v.agent ? undefined : t("wizard.setup.choose-agent");
                        e.dev_address = !v.dev_address.trim() || isHost(v.dev_address.trim())
                                ? undefined : t("wizard.setup.host-rule");
                        for (const [k, type] of Object.entries(v.agent_types || {})) {
                                const x = (v.agent_params || {})[k];
                                if ((v.agent_required || []).includes(k) && type !== "boolean" && !String(x ?? "").trim())
                                        e[`agent_params.${k}`] = t("wizard.setup.required");
                                else if ((type === "integer") && String(x ?? "").trim() && !/^-?\d+$/.test(String(x).trim()))
                                        e[`agent_params.${k}`] = t("wizard.setup.integer");
                        }
                }
        }
        e.outlet = OUTLET_RULE.test(v.outlet) ? undefined : t("fencing.outlet-rule");
        e.level = checkInteger(v.level, 1, 8);
        return e;
}

/* ==== The fencing step ==== */

// The form's paths the fencing step owns.
const FENCING_FIELDS = ["fence", "fence_device", "dev_name", "dev_type", "dev_address", "snmp_version", "snmp_port",
        "community", "snmp_user", "security_level", "auth_protocol", "auth_password", "priv_protocol", "priv_password",
        "agent", "agent_params", "outlet", "level", "untested"];

function TestResult({ result }) {
        const details = result.details || {};
        return (
                <div class="test-result" role="status">
                        <p>{result.ok ? <Badge tone="ok">{t("fencing.test-ok")}</Badge> : <Badge tone="bad">{t("fencing.test-failed")}</Badge>}
                                {" "}{result.message}</p>
                        <Facts items={[
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
                </div>
        );
}

// An agent's parameters as fields: the required ones, then the rest
// folded away. Managed ones (Haven sets them) are left out.
function AgentParameters({ form, metadata }) {
        const params = (metadata.parameters || []).filter((p) => !p.managed);
        const field = (p) => {
                const path = `agent_params.${p.name}`;
                const label = p.required ? t("wizard.setup.param-required", { name: p.name }) : p.name;
                if (p.type === "boolean")
                        return <Checkbox key={p.name} label={`${p.name}: ${p.description || ""}`} {...form.bindCheck(path)} />;
                if (p.type === "select")
                        return (
                                <Field key={p.name} as="select" label={label} hint={p.description} {...form.bindSelect(path)}>
                                        <option value="">{t("wizard.setup.default-value", { value: p.default ?? "—" })}</option>
                                        {(p.values || []).map((x) => <option key={x} value={x}>{x}</option>)}
                                </Field>
                        );
                return <Field key={p.name} label={label} hint={p.description}
                        type={/passw/.test(p.name) ? "password" : "text"} autocomplete="off"
                        placeholder={p.default ?? undefined} {...form.bind(path)} />;
        };
        const required = params.filter((p) => p.required);
        const optional = params.filter((p) => !p.required);
        return (
                <>
                        {metadata.shortdesc && <p class="hint">{metadata.shortdesc}</p>}
                        {required.map(field)}
                        {optional.length > 0 && (
                                <details>
                                        <summary>{t("wizard.setup.more-options", { count: optional.length })}</summary>
                                        {optional.map(field)}
                                </details>
                        )}
                </>
        );
}

function FencingStep({ form, devices, node, tested, setTested }) {
        const v = form.values;
        const [agents, setAgents] = useState(null);
        const [metadata, setMetadata] = useState(null);
        const [busy, setBusy] = useState(false);
        const [error, setError] = useState(null);

        useEffect(() => {
                if (v.dev_type !== "fence-agent" || agents)
                        return;
                api.fenceAgents().then(setAgents, (e) => setError(e));
        }, [v.dev_type]);
        useEffect(() => {
                if (v.dev_type !== "fence-agent" || !v.agent) {
                        setMetadata(null);
                        return;
                }
                let live = true;
                api.fenceAgent(v.agent).then((m) => {
                        if (!live)
                                return;
                        setMetadata(m);
                        const params = (m.parameters || []).filter((p) => !p.managed);
                        form.update((x) => ({
                                ...x,
                                agent_params: Object.fromEntries(params.map((p) => [p.name,
                                        p.type === "boolean" ? false : ""])),
                                agent_types: Object.fromEntries(params.map((p) => [p.name, p.type])),
                                agent_required: params.filter((p) => p.required).map((p) => p.name),
                        }));
                }, (e) => live && setError(e));
                return () => {
                        live = false;
                };
        }, [v.dev_type, v.agent]);

        const definition = JSON.stringify([deviceOf(v), v.outlet]);
        const test = async () => {
                const bad = form.touch(FENCING_FIELDS);
                if (bad.length)
                        return;
                // What was typed last, even before it was drawn.
                const x = form.latest.current;
                setBusy(true);
                setError(null);
                try {
                        const r = await api.testFenceDefinition({ ...deviceOf(x), outlets: [x.outlet] });
                        setTested({ definition: JSON.stringify([deviceOf(x), x.outlet]), result: r });
                        const path = r.field ? deviceField(r.field, x) : null;
                        if (!r.ok && path)
                                form.setServer(path, r.message);
                } catch (e) {
                        const path = e instanceof api.ApiError && e.field ? deviceField(e.field, x) : null;
                        setTested(null);
                        if (path)
                                form.setServer(path, e.message);
                        else
                                setError(e);
                } finally {
                        setBusy(false);
                }
        };
        const current = tested && tested.definition === definition ? tested.result : null;

        return (
                <>
                        <p>{t("wizard.setup.fencing-intro")}</p>
                        <Choice form={form} name="fence" legend={t("wizard.setup.fence-device")}
                                choices={[
                                        ["new", t("wizard.setup.fence-new")],
                                        devices.length > 0 && ["existing", t("wizard.setup.fence-existing")],
                                        ["later", t("wizard.setup.fence-later")],
                                ].filter(Boolean)} />
                        {v.fence === "later" && <p class="warning-text" role="note">{t("wizard.setup.fence-later-warning")}</p>}
                        {v.fence === "existing" && (
                                <Field as="select" label={t("col.device")} {...form.bindSelect("fence_device")}>
                                        <option value="">{t("wizard.choose")}</option>
                                        {devices.map((d) => <option key={d.id} value={String(d.id)}>{d.name} ({t(`fence.type.${d.type}`)})</option>)}
                                </Field>
                        )}
                        {v.fence === "new" && (
                                <>
                                        <div class="form-row">
                                                <Field label={t("col.name")} {...form.bind("dev_name")} />
                                                <Field as="select" label={t("col.type")} {...form.bindSelect("dev_type")}>
                                                        {["apc-snmp", "fence-agent", "manual"].map((x) => <option key={x} value={x}>{t(`fence.type.${x}`)}</option>)}
                                                </Field>
                                        </div>
                                        {v.dev_type === "manual" && <p class="hint">{t("wizard.setup.manual-hint")}</p>}
                                        {v.dev_type === "apc-snmp" && (
                                                <>
                                                        <div class="form-row">
                                                                <Field label={t("col.address")} hint={t("wizard.setup.device-address-hint")} {...form.bind("dev_address")} />
                                                                <Field as="select" label={t("wizard.setup.snmp-version")} {...form.bindSelect("snmp_version")}>
                                                                        {SNMP_VERSIONS.map(([x, label]) => <option key={x} value={x}>{label}</option>)}
                                                                </Field>
                                                                <Field label={t("wizard.setup.snmp-port")} inputMode="numeric" {...form.bind("snmp_port")} />
                                                        </div>
                                                        {v.snmp_version !== "3" ? (
                                                                <Field label={t("wizard.setup.community")} hint={t("wizard.setup.community-hint")}
                                                                        autocomplete="off" {...form.bind("community")} />
                                                        ) : (
                                                                <>
                                                                        <div class="form-row">
                                                                                <Field label={t("wizard.setup.snmp-user")} autocomplete="off" {...form.bind("snmp_user")} />
                                                                                <Field as="select" label={t("wizard.setup.security-level")} {...form.bindSelect("security_level")}>
                                                                                        <option value="authPriv">{t("wizard.setup.level.authPriv")}</option>
                                                                                        <option value="authNoPriv">{t("wizard.setup.level.authNoPriv")}</option>
                                                                                        <option value="noAuthNoPriv">{t("wizard.setup.level.noAuthNoPriv")}</option>
                                                                                </Field>
                                                                        </div>
                                                                        {v.security_level !== "noAuthNoPriv" && (
                                                                                <div class="form-row">
                                                                                        <Field as="select" label={t("wizard.setup.auth-protocol")} {...form.bindSelect("auth_protocol")}>
                                                                                                {AUTH_PROTOCOLS.map((x) => <option key={x} value={x}>{x}</option>)}
                                                                                        </Field>
                                                                                        <Field label={t("wizard.setup.auth-password")} type="password" autocomplete="new-password" {...form.bind("auth_password")} />
                                                                                </div>
                                                                        )}
                                                                        {v.security_level === "authPriv" && (
                                                                                <div class="form-row">
                                                                                        <Field as="select" label={t("wizard.setup.priv-protocol")} {...form.bindSelect("priv_protocol")}>
                                                                                                {PRIV_PROTOCOLS.map((x) => <option key={x} value={x}>{x}</option>)}
                                                                                        </Field>
                                                                                        <Field label={t("wizard.setup.priv-password")} type="password" autocomplete="new-password" {...form.bind("priv_password")} />
                                                                                </div>
                                                                        )}
                                                                </>
                                                        )}
                                                </>
                                        )}
                                        {v.dev_type === "fence-agent" && (
                                                <>
                                                        <div class="form-row">
                                                                <Field as="select" label={t("wizard.setup.agent")} {...form.bindSelect("agent")}>
                                                                        <option value="">{agents ? t("wizard.choose") : t("common.loading")}</option>
                                                                        {(agents || []).map((a) => <option key={a} value={a}>{a}</option>)}
                                                                </Field>
                                                                <Field label={t("col.address")} hint={t("wizard.setup.agent-address-hint")} {...form.bind("dev_address")} />
                                                        </div>
                                                        {v.agent && !metadata && <Loading />}
                                                        {metadata && <AgentParameters form={form} metadata={metadata} />}
                                                </>
                                        )}
                                </>
                        )}
                        {v.fence !== "later" && (
                                <div class="form-row">
                                        <Field label={t("wizard.setup.outlet", { node: node ? node.name : "" })}
                                                hint={t("wizard.setup.outlet-hint")} {...form.bind("outlet")} />
                                        <Field label={t("col.level")} inputMode="numeric" hint={t("wizard.setup.level-hint")} {...form.bind("level")} />
                                </div>
                        )}
                        {v.fence === "new" && v.dev_type !== "manual" && (
                                <>
                                        <p>
                                                <button type="button" onClick={test} disabled={busy}>
                                                        {busy ? t("fencing.testing") : t("wizard.setup.test")}
                                                </button>
                                        </p>
                                        {current && <TestResult result={current} />}
                                        {!(current && current.ok) && (
                                                <Checkbox label={t("wizard.setup.untested")} {...form.bindCheck("untested")} />
                                        )}
                                </>
                        )}
                        <ErrorBox error={error} />
                </>
        );
}

/* ==== The wizard ==== */

const INITIAL = {
        role: "create",
        address: "",
        address_other: "",
        name: "",
        admin: "admin",
        password: "",
        password2: "",
        join_address: "",
        join_admin: "admin",
        join_password: "",
        fence: "new",
        fence_device: "",
        dev_name: "pdu1",
        dev_type: "apc-snmp",
        dev_address: "",
        snmp_version: "1",
        snmp_port: "161",
        community: "private",
        snmp_user: "",
        security_level: "authPriv",
        auth_protocol: "SHA",
        auth_password: "",
        priv_protocol: "AES",
        priv_password: "",
        agent: "",
        agent_params: {},
        agent_types: {},
        agent_required: [],
        outlet: "",
        level: "1",
        untested: false,
        mail_relay: "",
        mail_user: "",
        mail_password: "",
        admin_email: "",
};

// This node's addresses to offer for the cluster network: not the
// loopback, not IPv6 link-local; links that are up first, IPv4 first.
function addressChoices(interfaces) {
        const out = [];
        for (const x of interfaces)
                if (x.kind !== "loopback")
                        for (const a of shownAddresses(x))
                                out.push({ address: a.address, name: x.name, up: x.link === "up", family: a.family });
        return out.sort((a, b) => (b.up - a.up) || (a.family - b.family));
}

function validate(v, ctx) {
        const e = {};
        if (ctx.fresh && !ctx.member) {
                const address = v.address === "other" ? v.address_other.trim() : v.address;
                e.address = v.address ? undefined : t("wizard.setup.choose-address");
                if (v.address === "other")
                        e.address_other = isIp(address) ? undefined : t("infra.address-rule");
                if (v.role === "create") {
                        e.name = checkName(v.name);
                        e.admin = checkName(v.admin);
                        e.password = v.password.length >= 8 && v.password.length <= 256 ? undefined : t("infra.password-rule");
                        e.password2 = v.password2 === v.password ? undefined : t("infra.password-mismatch");
                } else {
                        e.join_address = isHost(v.join_address.trim()) ? undefined : t("wizard.setup.host-rule");
                        e.join_admin = checkName(v.join_admin);
                        e.join_password = v.join_password ? undefined : t("login.password-required");
                }
        }
        Object.assign(e, validateDevice(v, ctx.devices || []));
        e.mail_relay = !v.mail_relay.trim() || RELAY_RULE.test(v.mail_relay.trim()) ? undefined : t("wizard.setup.relay-rule");
        e.mail_user = v.mail_user.length <= 255 ? undefined : t("wizard.setup.too-long");
        e.mail_password = v.mail_password.length <= 255 ? undefined : t("wizard.setup.too-long");
        e.admin_email = !v.admin_email.trim() || EMAIL_RULE.test(v.admin_email.trim()) ? undefined : t("infra.email-rule");
        return e;
}

// After a login: this node's id and name, the devices there are.
async function loadCluster() {
        const [status, nodes, devices] = await Promise.all([api.getStatus(), api.listNodes(), api.fenceDevices.list()]);
        return { status, nodes, devices, node: nodes.find((n) => n.node_id === status.node_id) || null };
}

function SetupWizard({ fresh, interfaces, hostname }) {
        const session = useStore(app, (s) => s.session);
        const [member, setMember] = useState(null); // {cluster, node_id} once created or joined
        const [cluster, setCluster] = useState(null); // loadCluster()'s answer
        const [clusterError, setClusterError] = useState(null);
        const [tested, setTested] = useState(null);
        const [done, setDone] = useState(null);
        const call = useRef(null); // which call an error comes from
        const written = useRef({ fencing: false, mail: false });
        const ctx = { fresh, member, devices: cluster ? cluster.devices : [] };
        const form = useWizardForm(INITIAL, (v) => validate(v, ctx));
        const v = form.values;
        const choices = addressChoices(interfaces || []);

        useEffect(() => {
                if (fresh && !form.get("address") && choices.length)
                        form.update((x) => ({ ...x, address: choices[0].address }));
        }, []);
        // With a session: what the fencing step needs.
        useEffect(() => {
                if (!session)
                        return;
                loadCluster().then((c) => {
                        setCluster(c);
                        if (c.node)
                                form.update((x) => ({ ...x, outlet: x.outlet || String(c.node.node_id) }));
                }, setClusterError);
        }, [!!session]);

        const ownAddress = () => (v.address === "other" ? v.address_other.trim() : v.address);

        // Creates or joins, then logs in with the administrator given.
        const becomeMember = async () => {
                const x = form.latest.current;
                const admin = x.role === "create" ? x.admin : x.join_admin;
                const password = x.role === "create" ? x.password : x.join_password;
                if (!member) {
                        call.current = x.role;
                        const own = x.address === "other" ? x.address_other.trim() : x.address;
                        const r = x.role === "create"
                                ? await api.clusterCreate({ name: x.name, admin, password, address: own })
                                : await api.clusterJoin({ address: x.join_address.trim(), admin, password, own_address: own });
                        setMember(r);
                }
                call.current = "login";
                await login(admin, password);
        };

        const finish = async () => {
                const x = form.latest.current;
                const me = cluster && cluster.node;
                if (x.fence !== "later" && !written.current.fencing) {
                        if (!me)
                                throw new Error(t("wizard.setup.no-node"));
                        const outlet = { node_id: me.node_id, outlet: x.outlet, level: Number(x.level) };
                        if (x.fence === "new") {
                                call.current = "fence-new";
                                await api.batch([
                                        { resource: "fence-devices", values: deviceOf(x) },
                                        { resource: "fence-outlets", values: { ...outlet, device_id: { ref: 0 } } },
                                ], { now: true }, t("wizard.setup.fence-summary", { device: x.dev_name, node: me.name }));
                        } else {
                                call.current = "fence-existing";
                                await api.batch([{ resource: "fence-outlets", values: { ...outlet, device_id: Number(x.fence_device) } }],
                                        { now: true });
                        }
                        written.current.fencing = true;
                }
                const mail = {};
                for (const k of ["mail_relay", "mail_user", "mail_password", "admin_email"])
                        if (x[k].trim())
                                mail[k] = x[k].trim();
                if (Object.keys(mail).length && !written.current.mail) {
                        call.current = "mail";
                        await api.changeInfrastructure(mail, { now: true });
                        written.current.mail = true;
                }
                setDone({ member, fence: x.fence });
        };

        const mapError = (field) => {
                switch (call.current) {
                case "create":
                        return { name: "name", admin: "admin", password: "password", address: "address" }[field] || null;
                case "join":
                        return { address: "join_address", admin: "join_admin", password: "join_password", own_address: "address" }[field] || null;
                case "fence-new":
                case "fence-existing": {
                        const f = batchField(field);
                        if (!f)
                                return null;
                        const [item, column] = f;
                        if (call.current === "fence-new" && item === 0)
                                return column === "parameters" ? "dev_type" : deviceField(column, form.latest.current);
                        return { outlet: "outlet", level: "level", node_id: "outlet", device_id: "fence_device" }[column] || null;
                }
                case "mail":
                        return ["mail_relay", "mail_user", "mail_password", "admin_email"].includes(field) ? field : null;
                default:
                        return null;
                }
        };

        const membershipDone = !fresh || !!member;
        const steps = [
                {
                        id: "start",
                        title: t("wizard.setup.start"),
                        fields: ["role"],
                        locked: membershipDone && fresh,
                        render: () => (
                                <>
                                        {fresh ? (
                                                <>
                                                        <p>{t("wizard.setup.fresh-intro", { node: hostname || "—" })}</p>
                                                        <p class="hint">{t("wizard.setup.no-backup")}</p>
                                                        <Choice form={form} name="role" legend={t("wizard.setup.role")}
                                                                choices={[["create", t("wizard.setup.role-create")], ["join", t("wizard.setup.role-join")]]}
                                                                hint={v.role === "create" ? t("wizard.setup.role-create-hint") : t("wizard.setup.role-join-hint")} />
                                                </>
                                        ) : (
                                                <>
                                                        <p>{t("wizard.setup.backup-intro")}</p>
                                                        <p><a class="button" href={api.backupUrl()} download>{t("wizard.setup.backup")}</a></p>
                                                        <p class="hint">{t("wizard.setup.backup-hint")}</p>
                                                </>
                                        )}
                                </>
                        ),
                },
                {
                        id: "address",
                        title: t("wizard.setup.network"),
                        fields: ["address", "address_other"],
                        skip: !fresh,
                        locked: membershipDone,
                        render: () => (
                                <>
                                        <p>{t("wizard.setup.network-intro")}</p>
                                        <InterfacesTable interfaces={interfaces || []} caption={t("wizard.setup.interfaces")} />
                                        <Field as="select" label={t("wizard.setup.address")} hint={t("wizard.setup.address-hint")}
                                                {...form.bindSelect("address")}>
                                                <option value="">{t("wizard.choose")}</option>
                                                {choices.map((c) => (
                                                        <option key={c.address} value={c.address}>
                                                                {t("wizard.setup.address-choice", {
                                                                        address: c.address, name: c.name,
                                                                        link: t(c.up ? "iface.link.up" : "iface.link.down"),
                                                                })}
                                                        </option>
                                                ))}
                                                <option value="other">{t("wizard.setup.address-other")}</option>
                                        </Field>
                                        {v.address === "other" && <Field label={t("wizard.setup.address-other-field")} {...form.bind("address_other")} />}
                                </>
                        ),
                },
                {
                        id: "cluster",
                        title: v.role === "create" ? t("wizard.setup.create") : t("wizard.setup.join"),
                        fields: v.role === "create" ? ["name", "admin", "password", "password2"] : ["join_address", "join_admin", "join_password"],
                        skip: !fresh,
                        locked: membershipDone,
                        next: becomeMember,
                        nextLabel: member ? undefined : (v.role === "create" ? t("wizard.setup.create-button") : t("wizard.setup.join-button")),
                        render: () => (member
                                ? <p role="status">{t("wizard.setup.member", { cluster: member.cluster })}</p>
                                : v.role === "create" ? (
                                        <>
                                                <p>{t("wizard.setup.create-intro", { address: ownAddress() })}</p>
                                                <Field label={t("infra.cluster-name")} autocomplete="off" {...form.bind("name")} />
                                                <Field label={t("wizard.setup.admin")} autocomplete="username" {...form.bind("admin")} />
                                                <Field label={t("infra.password")} type="password" autocomplete="new-password" {...form.bind("password")} />
                                                <Field label={t("infra.password-again")} type="password" autocomplete="new-password" {...form.bind("password2")} />
                                        </>
                                ) : (
                                        <>
                                                <p>{t("wizard.setup.join-intro", { address: ownAddress() })}</p>
                                                <Field label={t("wizard.setup.member-address")} hint={t("wizard.setup.member-address-hint")} {...form.bind("join_address")} />
                                                <JoinCheck address={v.join_address.trim()} />
                                                <Field label={t("wizard.setup.admin")} autocomplete="username" {...form.bind("join_admin")} />
                                                <Field label={t("infra.password")} type="password" autocomplete="current-password" {...form.bind("join_password")} />
                                        </>
                                )),
                },
                {
                        id: "fencing",
                        title: t("wizard.setup.fencing"),
                        fields: FENCING_FIELDS,
                        next: async () => {
                                const x = form.latest.current;
                                if (x.fence === "new" && x.dev_type !== "manual" && !x.untested) {
                                        const ok = tested && tested.definition === JSON.stringify([deviceOf(x), x.outlet]) && tested.result.ok;
                                        if (!ok)
                                                throw new Error(t("wizard.setup.test-first"));
                                }
                        },
                        render: () => (!cluster
                                ? (clusterError ? <ErrorBox error={clusterError} /> : <Loading />)
                                : <FencingStep form={form} devices={cluster.devices} node={cluster.node} tested={tested} setTested={setTested} />),
                },
                {
                        id: "mail",
                        title: t("wizard.setup.mail"),
                        fields: ["mail_relay", "mail_user", "mail_password", "admin_email"],
                        render: () => (
                                <>
                                        <p>{t("wizard.setup.mail-intro")}</p>
                                        <Field label={t("infra.mail-relay")} hint={t("infra.mail-relay-hint")} {...form.bind("mail_relay")} />
                                        <Field label={t("infra.mail-user")} autocomplete="off" {...form.bind("mail_user")} />
                                        <Field label={t("infra.mail-password")} type="password" autocomplete="new-password" {...form.bind("mail_password")} />
                                        <Field label={t("infra.admin-email")} type="email" {...form.bind("admin_email")} />
                                </>
                        ),
                },
        ];

        return (
                <Wizard title={t("wizard.setup.title")} frame="page" steps={steps} form={form}
                        onClose={() => navigate("dashboard")} onFinish={finish} mapError={mapError}
                        busyText={call.current === "create" ? t("wizard.setup.creating")
                                : call.current === "join" ? t("wizard.setup.joining") : undefined}
                        closeLabel={t("wizard.setup.leave")}
                        done={done && {
                                title: t("wizard.setup.done"),
                                render: () => (
                                        <>
                                                <p role="status">{fresh
                                                        ? (v.role === "create" ? t("wizard.setup.done-created", { cluster: member ? member.cluster : "" })
                                                                : t("wizard.setup.done-joined", { cluster: member ? member.cluster : "" }))
                                                        : t("wizard.setup.done-saved")}</p>
                                                {done.fence === "later" && <p class="warning-text">{t("wizard.setup.fence-later-warning")}</p>}
                                                <p>{t("wizard.setup.next-steps")}</p>
                                                <ul>
                                                        <li><a href={href("networks")}>{t("wizard.setup.next-network")}</a></li>
                                                        <li><a href={href("storage")}>{t("wizard.setup.next-storage")}</a></li>
                                                        <li><a href={href("vms")}>{t("wizard.setup.next-vm")}</a></li>
                                                        {v.role === "join" && fresh && <li><a href={href("nodes")}>{t("wizard.setup.next-activate")}</a></li>}
                                                </ul>
                                        </>
                                ),
                        }} />
        );
}

// "Can this node reach the member?": a check with a normal frame.
function JoinCheck({ address }) {
        const [result, setResult] = useState(null);
        const [busy, setBusy] = useState(false);
        if (!isIp(address))
                return null;
        const check = async () => {
                setBusy(true);
                try {
                        setResult(await api.networkCheck(address, 1500));
                } catch (e) {
                        setResult({ ok: false, message: e.message });
                } finally {
                        setBusy(false);
                }
        };
        return (
                <p>
                        <button type="button" onClick={check} disabled={busy}>{busy ? t("wizard.net.checking") : t("wizard.setup.check-member")}</button>
                        {result && <span role="status"> {result.ok ? <Badge tone="ok">{t("wizard.net.check-ok")}</Badge>
                                : <Badge tone="bad">{t("wizard.net.check-failed")}</Badge>} {result.message}</span>}
                </p>
        );
}

// The page: who may set this node up? A session (the node is in a cluster),
// or nobody needs one (GET /wizard/interfaces answers without: it is not).
export function SetupPage() {
        useLanguage();
        const session = useStore(app, (s) => s.session);
        const [probe, setProbe] = useState(session ? { fresh: false } : null);
        const [error, setError] = useState(null);
        const look = () => {
                setError(null);
                api.interfaces().then(
                        (r) => setProbe({ fresh: !session, interfaces: r.interfaces, hostname: r.hostname }),
                        (e) => {
                                if (e instanceof api.ApiError && e.status === 401)
                                        setProbe({ member: true });
                                else
                                        setError(e);
                        });
        };
        useEffect(() => {
                document.title = `${t("wizard.setup.title")} · Haven`;
                if (!session)
                        look();
        }, []);
        let body;
        if (error)
                body = <ErrorBox error={error} onRetry={look} />;
        else if (!probe)
                body = <Loading />;
        else if (probe.member)
                body = (
                        <>
                                <p>{t("wizard.setup.is-member")}</p>
                                <p><a class="button" href={href("dashboard")}>{t("login.submit")}</a></p>
                        </>
                );
        else
                body = <SetupWizard fresh={probe.fresh} interfaces={probe.interfaces} hostname={probe.hostname} />;
        return (
                <div class="setup">
                        <main id="main" class="setup-box" tabIndex={-1}>
                                <div class="login-head">
                                        <img src="favicon.svg" alt="" width="40" height="40" />
                                        <h1>{t("wizard.setup.title")}</h1>
                                        <LanguageSelect />
                                </div>
                                {body}
                        </main>
                </div>
        );
}
