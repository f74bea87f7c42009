// SPDX-License-Identifier: LGPL-2.1-or-later
// Infrastructure: the cluster's name (PATCH /cluster), DNS, time and mail
// (GET/PATCH /infrastructure), host names (/hosts), administrators
// (/administrators) and this node's HTTPS certificate (PUT /tls). Every
// change but the certificate is staged until activation.

import { useState } from "preact/hooks";
import * as api from "../api.js";
import { Checkbox, Confirm, Dialog, ErrorBox, Field, Loaded, Page, Section, Table, useForm } from "../components/ui.jsx";
import { formatTime, t } from "../i18n.js";
import { href } from "../router.js";
import { app, toast, useResource, useStore } from "../store.js";
import { DeleteRow } from "./resources.jsx";

const NAME_RULE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const list = (text) => text.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
const nullable = (text) => (text.trim() ? text.trim() : null);

/* ==== Cluster name ==== */

function ClusterName() {
        const cluster = useStore(app, (s) => s.cluster);
        const form = useForm({ name: cluster ? cluster.name : "" }, (v) => ({
                name: NAME_RULE.test(v.name) ? undefined : t("form.name-rule"),
        }));
        const save = (e) => {
                e.preventDefault();
                form.submit(async (v) => {
                        await api.renameCluster(v.name);
                        toast("ok", t("common.staged"));
                });
        };
        return (
                <form class="inline-form" onSubmit={save} noValidate>
                        <Field label={t("infra.cluster-name")} {...form.bind("name")} />
                        <button type="submit" class="primary" disabled={form.busy}>{t("common.stage")}</button>
                        <ErrorBox error={form.formError} />
                </form>
        );
}

/* ==== DNS, time, mail ==== */

function Settings({ row }) {
        const r = row || {};
        const form = useForm({
                dns_domain: r.dns_domain || "",
                dns_search: (r.dns_search || []).join(", "),
                dns_forwarders: (r.dns_forwarders || []).join(", "),
                ntp_servers: (r.ntp_servers || []).join(", "),
                mail_relay: r.mail_relay || "",
                mail_user: r.mail_user || "",
                mail_password: "",
                clear_password: false,
                admin_email: r.admin_email || "",
        }, (v) => ({
                dns_search: list(v.dns_search).length > 6 ? t("infra.at-most", { n: 6 }) : undefined,
                dns_forwarders: list(v.dns_forwarders).length > 8 ? t("infra.at-most", { n: 8 }) : undefined,
                ntp_servers: list(v.ntp_servers).length > 8 ? t("infra.at-most", { n: 8 }) : undefined,
                admin_email: v.admin_email && !/^[^@\s]+@[^@\s]+$/.test(v.admin_email) ? t("infra.email-rule") : undefined,
        }));
        const save = (e) => {
                e.preventDefault();
                form.submit(async (v) => {
                        const fields = {
                                dns_domain: nullable(v.dns_domain),
                                dns_search: list(v.dns_search),
                                dns_forwarders: list(v.dns_forwarders),
                                ntp_servers: list(v.ntp_servers),
                                mail_relay: nullable(v.mail_relay),
                                mail_user: nullable(v.mail_user),
                                admin_email: nullable(v.admin_email),
                        };
                        if (v.clear_password)
                                fields.mail_password = null;
                        else if (v.mail_password)
                                fields.mail_password = v.mail_password;
                        await api.changeInfrastructure(fields);
                        toast("ok", t("common.staged"));
                });
        };
        return (
                <form onSubmit={save} noValidate class="form-grid">
                        <fieldset>
                                <legend>{t("infra.dns")}</legend>
                                <Field label={t("infra.dns-domain")} {...form.bind("dns_domain")} />
                                <Field label={t("infra.dns-search")} hint={t("infra.list-hint")} {...form.bind("dns_search")} />
                                <Field label={t("infra.dns-forwarders")} hint={t("infra.list-hint")} {...form.bind("dns_forwarders")} />
                        </fieldset>
                        <fieldset>
                                <legend>{t("infra.time")}</legend>
                                <Field label={t("infra.ntp-servers")} hint={t("infra.list-hint")} {...form.bind("ntp_servers")} />
                        </fieldset>
                        <fieldset>
                                <legend>{t("infra.mail")}</legend>
                                <Field label={t("infra.mail-relay")} hint={t("infra.mail-relay-hint")} {...form.bind("mail_relay")} />
                                <Field label={t("infra.mail-user")} autocomplete="off" {...form.bind("mail_user")} />
                                <Field label={t("infra.mail-password")} type="password" autocomplete="new-password"
                                        hint={r.mail_password_set ? t("infra.mail-password-set") : t("infra.mail-password-none")}
                                        {...form.bind("mail_password")} />
                                {r.mail_password_set && (
                                        <Checkbox label={t("infra.mail-password-clear")} checked={form.values.clear_password}
                                                onChange={(e) => form.set("clear_password", e.currentTarget.checked)} />
                                )}
                                <Field label={t("infra.admin-email")} type="email" {...form.bind("admin_email")} />
                        </fieldset>
                        <ErrorBox error={form.formError} />
                        <div class="form-actions">
                                <button type="submit" class="primary" disabled={form.busy}>{t("common.stage")}</button>
                        </div>
                </form>
        );
}

/* ==== Hosts ==== */

function Hosts() {
        const hosts = useResource(() => api.hosts.list(), [], ["hosts"]);
        const form = useForm({ name: "", address: "" }, (v) => ({
                name: /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(v.name) ? undefined : t("infra.host-rule"),
                address: v.address.length >= 2 && /^[0-9A-Fa-f.:]+$/.test(v.address) ? undefined : t("infra.address-rule"),
        }));
        const add = (e) => {
                e.preventDefault();
                form.submit(async (v) => {
                        await api.hosts.add({ name: v.name, address: v.address });
                        toast("ok", t("common.staged"));
                        form.setValues({ name: "", address: "" });
                });
        };
        return (
                <>
                        <Loaded resource={hosts}>{(rows) => (
                                <Table caption={t("infra.hosts")} empty={t("infra.no-hosts")}
                                        head={[t("col.name"), t("col.address"), t("col.actions")]}>
                                        {rows.map((h) => (
                                                <tr key={h.id}>
                                                        <th scope="row">{h.name}</th>
                                                        <td>{h.address}</td>
                                                        <td class="actions"><DeleteRow name={h.name} onDelete={() => api.hosts.remove(h.id)} /></td>
                                                </tr>
                                        ))}
                                </Table>
                        )}</Loaded>
                        <form class="inline-form" onSubmit={add} noValidate aria-label={t("infra.add-host")}>
                                <Field label={t("col.name")} {...form.bind("name")} />
                                <Field label={t("col.address")} {...form.bind("address")} />
                                <button type="submit" class="primary" disabled={form.busy}>{t("infra.add-host")}</button>
                                <ErrorBox error={form.formError} />
                        </form>
                </>
        );
}

/* ==== Administrators ==== */

function PasswordDialog({ admin, onClose }) {
        const form = useForm({ name: admin ? admin.name : "", password: "", again: "" }, (v) => ({
                name: NAME_RULE.test(v.name) ? undefined : t("form.name-rule"),
                password: v.password.length >= 8 && v.password.length <= 256 ? undefined : t("infra.password-rule"),
                again: v.again === v.password ? undefined : t("infra.password-mismatch"),
        }));
        const save = (e) => {
                e.preventDefault();
                form.submit(async (v) => {
                        if (admin)
                                await api.administrators.changePassword(admin.id, v.password);
                        else
                                await api.administrators.add(v.name, v.password);
                        toast("ok", t("common.staged"));
                        onClose();
                });
        };
        return (
                <Dialog title={admin ? t("infra.password-title", { name: admin.name }) : t("infra.add-admin")} onClose={onClose}>
                        <form onSubmit={save} noValidate>
                                {!admin && <Field label={t("col.name")} autocomplete="off" {...form.bind("name")} />}
                                <Field label={t("infra.password")} type="password" autocomplete="new-password" {...form.bind("password")} />
                                <Field label={t("infra.password-again")} type="password" autocomplete="new-password" {...form.bind("again")} />
                                <ErrorBox error={form.formError} />
                                <div class="dialog-foot">
                                        <button type="button" onClick={onClose}>{t("common.cancel")}</button>
                                        <button type="submit" class="primary" disabled={form.busy}>{t("common.stage")}</button>
                                </div>
                        </form>
                </Dialog>
        );
}

function Administrators() {
        const admins = useResource(() => api.administrators.list(), [], ["administrators"]);
        const [dialog, setDialog] = useState(null);
        const [remove, setRemove] = useState(null);
        return (
                <>
                        <Loaded resource={admins}>{(rows) => (
                                <Table caption={t("infra.admins")} head={[t("col.name"), t("col.created"), t("col.actions")]}>
                                        {rows.map((a) => (
                                                <tr key={a.id}>
                                                        <th scope="row">{a.name}</th>
                                                        <td>{formatTime(a.created_at)}</td>
                                                        <td class="actions">
                                                                <button type="button" onClick={() => setDialog({ admin: a })}>{t("infra.change-password")}</button>
                                                                <button type="button" class="danger-text" onClick={() => setRemove(a)}
                                                                        aria-label={t("common.delete-named", { name: a.name })}>{t("common.delete")}</button>
                                                        </td>
                                                </tr>
                                        ))}
                                </Table>
                        )}</Loaded>
                        <button type="button" onClick={() => setDialog({ admin: null })}>{t("infra.add-admin")}</button>
                        {dialog && <PasswordDialog admin={dialog.admin} onClose={() => setDialog(null)} />}
                        {remove && (
                                <Confirm title={t("common.delete-named", { name: remove.name })} text={t("infra.delete-admin-text")}
                                        confirmLabel={t("common.delete")} danger
                                        onConfirm={async () => {
                                                await api.administrators.remove(remove.id);
                                                toast("ok", t("infra.admin-deleted", { name: remove.name }));
                                        }}
                                        onClose={() => setRemove(null)} />
                        )}
                </>
        );
}

/* ==== Certificate ==== */

function Certificate() {
        const form = useForm({ certificate: "", key: "" }, (v) => ({
                certificate: v.certificate.includes("-----BEGIN CERTIFICATE-----") ? undefined : t("infra.pem-certificate"),
                key: /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(v.key) ? undefined : t("infra.pem-key"),
        }));
        const [done, setDone] = useState(null);
        const save = (e) => {
                e.preventDefault();
                form.submit(async (v) => {
                        const r = await api.replaceTls(v.certificate, v.key);
                        setDone(r.fingerprint);
                        form.setValues({ certificate: "", key: "" });
                });
        };
        return (
                <form onSubmit={save} noValidate>
                        <p class="muted">{t("infra.tls-intro")}</p>
                        <Field as="textarea" rows={6} label={t("infra.tls-certificate")} class="mono" {...form.bind("certificate")} />
                        <Field as="textarea" rows={6} label={t("infra.tls-key")} class="mono" {...form.bind("key")} />
                        <ErrorBox error={form.formError} />
                        {done && <p role="status" class="notice">{t("infra.tls-done", { fingerprint: done })}</p>}
                        <button type="submit" class="primary" disabled={form.busy}>{t("infra.tls-replace")}</button>
                </form>
        );
}

export function InfrastructurePage() {
        const cluster = useStore(app, (s) => s.cluster);
        const infra = useResource(() => api.getInfrastructure().catch((e) => {
                if (e instanceof api.ApiError && e.status === 404)
                        return null;
                throw e;
        }), [], ["infrastructure"]);
        return (
                <Page title={t("nav.infrastructure")}
                        actions={<a class="button" href={href("setup")}>{t("wizard.setup.open")}</a>}>
                        <Section title={t("infra.cluster")} id="infra-cluster">
                                <ClusterName key={cluster ? `${cluster.id}-${cluster.version}` : "none"} />
                        </Section>
                        <Section title={t("infra.settings")} id="infra-settings">
                                <Loaded resource={infra}>{(row) => <Settings row={row} key={row ? row.version : 0} />}</Loaded>
                        </Section>
                        <Section title={t("infra.hosts")} id="infra-hosts"><Hosts /></Section>
                        <Section title={t("infra.admins")} id="infra-admins"><Administrators /></Section>
                        <Section title={t("infra.tls")} id="infra-tls"><Certificate /></Section>
                </Page>
        );
}
