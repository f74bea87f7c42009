// SPDX-License-Identifier: LGPL-2.1-or-later
// Every call of the Haven API (docs/api/README.md, docs/api/openapi.json),
// declared once: method, path, body. The rest of the UI calls these
// functions and never builds a URL itself. Owns the session's CSRF token
// (sent as X-CSRF-Token on every write), turns error answers into ApiError
// ({status, code, message, field}), reports a lost session (401) to whoever
// registered for it, and follows the event stream (SSE) with reconnects.
// Must not: touch the DOM or the application's state.

const BASE = "/api/v1";

/* ==== Errors ==== */

// An answer that is not 2xx: the API's {"error": {code, message, field}},
// or what the UI makes of a network failure (status 0, code "network").
export class ApiError extends Error {
        constructor(status, code, message, field = null, retryAfter = null) {
                super(message);
                this.name = "ApiError";
                this.status = status;
                this.code = code;
                this.field = field;
                this.retryAfter = retryAfter;
        }
}

/* ==== Session state ==== */

let csrfToken = null;
let unauthorizedHandler = null;

// fn() runs when an answer says the session is gone (401), except for the
// calls that expect it (login, who-am-I).
export function onUnauthorized(fn) {
        unauthorizedHandler = fn;
}

export function hasSession() {
        return csrfToken !== null;
}

function forgetSession() {
        csrfToken = null;
}

/* ==== Requests ==== */

function queryString(query) {
        if (!query)
                return "";
        const parts = [];
        for (const [k, v] of Object.entries(query))
                if (v !== undefined && v !== null && v !== false)
                        parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v === true ? 1 : v)}`);
        return parts.length ? `?${parts.join("&")}` : "";
}

// One request. Returns the answer's JSON (null for an empty body), or
// throws ApiError. opts: body (sent as JSON), query, signal, expect401
// (a 401 is the caller's business, the session handler is not called).
async function request(method, path, opts = {}) {
        const headers = { Accept: "application/json" };
        const init = { method, headers, credentials: "same-origin", signal: opts.signal };

        if (opts.body !== undefined) {
                headers["Content-Type"] = "application/json";
                init.body = JSON.stringify(opts.body);
        }
        if (method !== "GET" && method !== "HEAD" && csrfToken)
                headers["X-CSRF-Token"] = csrfToken;

        let res;
        try {
                res = await fetch(BASE + path + queryString(opts.query), init);
        } catch (e) {
                if (e && e.name === "AbortError")
                        throw e;
                throw new ApiError(0, "network", String((e && e.message) || e));
        }

        let data = null;
        const type = res.headers.get("Content-Type") || "";
        if (res.status !== 204 && type.includes("application/json")) {
                try {
                        data = await res.json();
                } catch {
                        data = null;
                }
        }
        if (res.ok)
                return data;

        const e = (data && data.error) || {};
        const retry = res.headers.get("Retry-After");
        const err = new ApiError(res.status, e.code || `http-${res.status}`,
                e.message || res.statusText || `HTTP ${res.status}`,
                e.field ?? null, retry ? Number(retry) : null);
        if (res.status === 401 && !opts.expect401) {
                forgetSession();
                if (unauthorizedHandler)
                        unauthorizedHandler(err);
        }
        throw err;
}

const get = (path, query, opts) => request("GET", path, { ...opts, query });
const post = (path, body, query) => request("POST", path, { body, query });
const patch = (path, body, query) => request("PATCH", path, { body, query });
const put = (path, body) => request("PUT", path, { body });
const del = (path, query) => request("DELETE", path, { query });

// Writes are staged unless {now: true}.
const nowQuery = (opts) => (opts && opts.now ? { now: 1 } : undefined);
// Paged lists: {limit, before}.
const pageQuery = (page) => ({ limit: page && page.limit, before: page && page.before });
const id = (n) => encodeURIComponent(String(n));

/* ==== Session ==== */

// POST /session {name, password}: logs in; keeps the CSRF token.
// Returns {administrator, csrf_token, expires_at}.
export async function login(name, password) {
        const s = await request("POST", "/session", { body: { name, password }, expect401: true });
        csrfToken = s.csrf_token;
        return s;
}

// GET /session: who is logged in (and the CSRF token after a reload), or
// null without a session.
export async function whoAmI() {
        try {
                const s = await request("GET", "/session", { expect401: true });
                csrfToken = s.csrf_token;
                return s;
        } catch (e) {
                if (e instanceof ApiError && e.status === 401) {
                        forgetSession();
                        return null;
                }
                throw e;
        }
}

// DELETE /session: logs out (also when the session is gone already).
export async function logout() {
        try {
                await request("DELETE", "/session", { expect401: true });
        } finally {
                forgetSession();
        }
}

/* ==== Status and dashboard ==== */

export const getStatus = () => get("/status");
export const getDashboard = (opts) => get("/dashboard", undefined, opts);

/* ==== Configuration tables ==== */

// A table as a collection: GET list ({items}), POST add, GET one, PATCH
// change (the fields named), DELETE; writes staged unless {now: true}.
function collection(path) {
        return {
                list: () => get(path).then((r) => r.items),
                get: (n) => get(`${path}/${id(n)}`),
                add: (row, opts) => post(path, row, nowQuery(opts)),
                change: (n, fields, opts) => patch(`${path}/${id(n)}`, fields, nowQuery(opts)),
                remove: (n, opts) => del(`${path}/${id(n)}`, nowQuery(opts)),
        };
}

export const networks = collection("/networks");
export const hosts = collection("/hosts");
export const fenceDevices = collection("/fence-devices");
export const fenceOutlets = collection("/fence-outlets");
export const disks = collection("/disks");
export const vms = collection("/vms");
export const vmDisks = collection("/vm-disks");
export const vmNics = collection("/vm-nics");
export const vmCdroms = collection("/vm-cdroms");

export const getCluster = () => get("/cluster");
export const renameCluster = (name, opts) => patch("/cluster", { name }, nowQuery(opts));

export const getInfrastructure = () => get("/infrastructure");
export const changeInfrastructure = (fields, opts) => patch("/infrastructure", fields, nowQuery(opts));

export const administrators = {
        list: () => get("/administrators").then((r) => r.items),
        get: (n) => get(`/administrators/${id(n)}`),
        add: (name, password, opts) => post("/administrators", { name, password }, nowQuery(opts)),
        changePassword: (n, password, opts) => patch(`/administrators/${id(n)}`, { password }, nowQuery(opts)),
        remove: (n, opts) => del(`/administrators/${id(n)}`, nowQuery(opts)),
};

/* ==== Nodes ==== */

export const NODE_STATES = ["active", "standby", "maintenance"];

export const listNodes = () => get("/nodes").then((r) => r.items);
export const getNode = (n) => get(`/nodes/${id(n)}`);
export const changeNode = (n, fields, opts) => patch(`/nodes/${id(n)}`, fields, nowQuery(opts));
// DELETE /nodes/{id}: removes the node from the cluster, at once.
export const removeNode = (n) => del(`/nodes/${id(n)}`);
// POST /nodes/{id}/actions/{state}: at once; {id, state, version}.
export function setNodeState(n, state) {
        if (!NODE_STATES.includes(state))
                throw new Error(`unknown node state ${state}`);
        return post(`/nodes/${id(n)}/actions/${state}`);
}
// POST /nodes/{id}/fence {action?, reason?}: a fence request, at once.
export const fenceNode = (n, body = {}) => post(`/nodes/${id(n)}/fence`, body);
// POST /nodes/{id}/fence/confirm: the administrator switched it off by hand.
export const confirmFenced = (n) => post(`/nodes/${id(n)}/fence/confirm`);
// GET /nodes/{id}/fence-check: reads the node's outlets, switches nothing.
export const fenceCheck = (n) => get(`/nodes/${id(n)}/fence-check`);

/* ==== VMs ==== */

export const VM_COMMANDS = ["start", "shutdown", "reboot", "reset", "poweroff", "release"];

// POST /vms/{id}/actions/{command}: a command for the VM manager: 202
// {id, vm_id, command, target_node_id, state: "pending", version, href}.
export function vmCommand(n, command) {
        if (!VM_COMMANDS.includes(command))
                throw new Error(`unknown VM command ${command}`);
        return post(`/vms/${id(n)}/actions/${command}`);
}
// POST /vms/{id}/actions/migrate {node}: live migration, a command (202).
export const migrateVm = (n, nodeName) => post(`/vms/${id(n)}/actions/migrate`, { node: nodeName });
// POST /vms/{id}/actions/prefer {node|null}: at once.
export const preferNode = (n, nodeName) => post(`/vms/${id(n)}/actions/prefer`, { node: nodeName });
export const vmCommandsOf = (n, page) => get(`/vms/${id(n)}/commands`, pageQuery(page));
export const listVmCommands = (page) => get("/vm-commands", pageQuery(page));
export const getVmCommand = (n) => get(`/vm-commands/${id(n)}`);
export const vmPlacements = () => get("/vm-placements").then((r) => r.items);

// The console's WebSocket URL (GET /vms/{id}/console with Upgrade), on
// this server: its Origin must be ours.
export function consoleUrl(n) {
        const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
        return `${scheme}//${window.location.host}${BASE}/vms/${id(n)}/console`;
}

/* ==== Fencing ==== */

// POST /fence-devices/test {type, address, parameters, name?, outlets?}.
export const testFenceDefinition = (definition) => post("/fence-devices/test", definition);
// POST /fence-devices/{id}/test: an added device with its mapped outlets.
export const testFenceDevice = (n) => post(`/fence-devices/${id(n)}/test`);
export const fenceAgents = () => get("/fence-agents").then((r) => r.agents);
export const fenceAgent = (name) => get(`/fence-agents/${encodeURIComponent(name)}`).then((r) => r.metadata);
export const getFencing = () => get("/fencing");
export const fenceRequests = (page) => get("/fence-requests", pageQuery(page));
export const getFenceRequest = (n) => get(`/fence-requests/${id(n)}`);

/* ==== Alerts, changes, jobs, audit ==== */

export const alerts = (page) => get("/alerts", pageQuery(page));
export const clearAlert = (n) => post(`/alerts/${id(n)}/clear`);

export const listChanges = () => get("/changes").then((r) => r.items);
export const changesDiff = () => get("/changes/diff").then((r) => r.changes);
// POST /changes/activate: {job_id, version}; follow the job's log.
export const activateChanges = () => post("/changes/activate");
export const discardChanges = () => post("/changes/discard");
export const discardChange = (n) => del(`/changes/${id(n)}`);

export const jobs = (page) => get("/jobs", pageQuery(page));
export const getJob = (n) => get(`/jobs/${id(n)}`);
// GET /jobs/{id}/log?after=ID: {job_id, state, items, last_id}.
export const jobLog = (n, after = 0) => get(`/jobs/${id(n)}/log`, { after });

export const audit = (page) => get("/audit", pageQuery(page));

/* ==== Setup (the wizards) ==== */

// Public while this node is in no cluster. cluster-create can take minutes.
// create {name, admin, password, address?}, join {address, admin,
// password, own_address?}: {cluster, node_id}.
export const clusterCreate = (body) => post("/wizard/cluster-create", body);
export const clusterJoin = (body) => post("/wizard/cluster-join", body);
// {address, mtu}: {ok, transmitted, received, rtt_avg_ms, path_mtu, message}.
export const networkCheck = (address, mtu) => post("/wizard/network-check", { address, mtu });
// GET /wizard/interfaces: {interfaces: [{name, mac, kind, link, operstate,
// speed_mbps, mtu, master, addresses: [{address, prefix, family}]}],
// hostname}. Public while this node is in no cluster (a 401 without a
// session says it is in one).
export const interfaces = () => get("/wizard/interfaces", undefined, { expect401: true });

// POST /batch: rows of several collections as one change. items:
// [{resource, values}] (an addition; a row id may be {ref: N}, item N's
// new row) or [{resource, id, version, values}] (a change). Staged unless
// {now: true}: {staged, change_id, version}, or {ids, version}. Errors
// name "items/N/FIELD".
export const batch = (items, opts, summary) =>
        post("/batch", summary ? { items, summary } : { items }, nowQuery(opts));

// The configuration backup: a file download (GET /backup, the session's
// cookie), so a link, not a call.
export const backupUrl = () => `${BASE}/backup`;

/* ==== The HTTPS certificate ==== */

export const replaceTls = (certificate, key) => put("/tls", { certificate, key });

/* ==== Events ==== */

export const EVENT_TYPES = ["commit", "status", "job-log", "membership", "resync"];

// The event stream (GET /events, Server-Sent Events). EventSource
// reconnects by itself after a dropped connection; when the server refuses
// the stream (401, 429, 503) it gives up, so we reopen it with a growing
// delay, after asking whether the session still exists. A reconnect may
// have missed events (there is no replay): listeners get a "resync".
// state: "connecting", "open", "reconnecting", "closed", "unsupported".
export class EventStream {
        constructor() {
                this.listeners = new Map();
                this.source = null;
                this.timer = null;
                this.delay = 1000;
                this.wasOpen = false;
                this.state = "closed";
        }

        on(type, fn) {
                if (!this.listeners.has(type))
                        this.listeners.set(type, new Set());
                this.listeners.get(type).add(fn);
                return () => this.listeners.get(type).delete(fn);
        }

        emit(type, data) {
                for (const fn of this.listeners.get(type) || [])
                        try {
                                fn(data);
                        } catch (e) {
                                console.error(e);
                        }
        }

        setState(state) {
                if (state === this.state)
                        return;
                this.state = state;
                this.emit("state", state);
        }

        start() {
                if (typeof window.EventSource !== "function") {
                        this.setState("unsupported");
                        return;
                }
                this.close();
                this.setState(this.wasOpen ? "reconnecting" : "connecting");
                const es = new window.EventSource(`${BASE}/events`, { withCredentials: true });
                this.source = es;
                es.onopen = () => {
                        this.delay = 1000;
                        this.setState("open");
                        if (this.wasOpen)
                                this.emit("resync", { reason: "reconnected" });
                        this.wasOpen = true;
                };
                es.onerror = () => {
                        if (this.source !== es)
                                return;
                        if (es.readyState === window.EventSource.CLOSED) {
                                es.close();
                                this.source = null;
                                this.setState("reconnecting");
                                this.retryLater();
                        } else {
                                this.setState("reconnecting");
                        }
                };
                for (const type of EVENT_TYPES)
                        es.addEventListener(type, (ev) => {
                                let data = null;
                                try {
                                        data = JSON.parse(ev.data);
                                } catch {
                                        return;
                                }
                                this.emit(type, data);
                        });
        }

        // The server refused the stream: is the session still there?
        retryLater() {
                clearTimeout(this.timer);
                this.timer = setTimeout(async () => {
                        this.timer = null;
                        try {
                                if (!(await whoAmI())) {
                                        this.setState("closed");
                                        if (unauthorizedHandler)
                                                unauthorizedHandler(new ApiError(401, "unauthorized", "session ended"));
                                        return;
                                }
                        } catch {
                                /* the node may be restarting: try again */
                        }
                        this.start();
                }, this.delay);
                this.delay = Math.min(this.delay * 2, 30000);
        }

        close() {
                clearTimeout(this.timer);
                this.timer = null;
                if (this.source) {
                        this.source.close();
                        this.source = null;
                }
        }

        stop() {
                this.close();
                this.wasOpen = false;
                this.setState("closed");
        }
}
