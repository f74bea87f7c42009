// SPDX-License-Identifier: LGPL-2.1-or-later
// The JSON API in the lab: three nodes, each with its real haven-domaind,
// haven-fenced and haven-httpd (plain HTTP on every address, port 8001; the
// lab's services.json must list haven-httpd, see daemons/httpd/README.md).
// What an administrator checks through the API: logging in on any node;
// every route refuses a request without a session, every write one without
// the CSRF token; a staged write activated on one node and seen through
// another node's API, with its job log and audit entry; node actions at
// once; a fence device tested against the lab's power strip before it is
// added, then its outlets read and the cluster's fencing status; the
// dashboard with every node's sample, and following a node's power-off
// through the event stream; the network check across the interconnect;
// without quorum reads answer and writes are 503.
// Routes come from docs/api/openapi.json, which a unit test holds equal to
// haven-httpd's route table.
// Bad inputs tried: no session, a bogus cookie, no CSRF token, a write
// without quorum, a device definition with a wrong community.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  NOTHING_LEFT, ROOT, lab, labProcesses, leftovers, nodeStatus, waitFor,
} from './lib/lab.mjs';
import {
  LAB_PASSWORD, converged, createCluster as createClusterWith,
} from './lib/domain.mjs';

const createCluster = (n) => createClusterWith(n, waitFor);
const PORT = 8001;
const address = (node) => `198.18.0.${node}`;
const base = (node) => `http://${address(node)}:${PORT}/api/v1`;

// A logged-in client of one node's API.
class Api {
  constructor(node) {
    this.node = node;
    this.cookie = null;
    this.csrf = null;
  }

  async login(name = 'admin', password = LAB_PASSWORD) {
    const r = await fetch(`${base(this.node)}/session`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name, password }),
    });
    const text = await r.text();
    assert.equal(r.status, 200, `login on node${this.node}: ${text}`);
    this.cookie = r.headers.get('set-cookie').split(';')[0];
    this.csrf = JSON.parse(text).csrf_token;
    return this;
  }

  // {status, body (parsed JSON or null), headers}.
  async call(method, path, body, { csrf = true, cookie = true, headers = {} } = {}) {
    const h = { ...headers };
    if (cookie && this.cookie) h.Cookie = this.cookie;
    if (csrf && this.csrf && method !== 'GET') h['X-CSRF-Token'] = this.csrf;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const r = await fetch(`${base(this.node)}${path}`, {
      method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: r.status, body: parsed, headers: r.headers };
  }

  async ok(method, path, body, expect = [200]) {
    const r = await this.call(method, path, body);
    assert.ok(expect.includes(r.status), `${method} ${path} on node${this.node}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }
}

// Every (method, path) the API has, from the OpenAPI description.
function routes() {
  const doc = JSON.parse(readFileSync(join(ROOT, 'docs', 'api', 'openapi.json'), 'utf8'));
  const out = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
      if (item[method]) out.push({ method: method.toUpperCase(), path, op: item[method] });
    }
  }
  return out;
}

const concrete = (path) => path.replace('{id}', '1').replace('{name}', 'fence_apc_snmp');

// Reads an event stream (SSE) of node until stop(); events land in .events.
class EventStream {
  constructor(api) {
    this.api = api;
    this.events = [];
    this.controller = new AbortController();
    this.waiters = [];
  }

  async open() {
    const r = await fetch(`${base(this.api.node)}/events`, {
      headers: { Cookie: this.api.cookie }, signal: this.controller.signal,
    });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/event-stream/);
    this.done = (async () => {
      const decoder = new TextDecoder();
      let buf = '';
      try {
        for await (const chunk of r.body) {
          buf += decoder.decode(chunk, { stream: true });
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const name = block.match(/^event: (.*)$/m)?.[1];
            const data = block.match(/^data: (.*)$/m)?.[1];
            if (name) {
              this.events.push({ name, data: JSON.parse(data), at: Date.now() });
              for (const w of this.waiters.splice(0)) w();
            }
          }
        }
      } catch {
        // aborted
      }
    })();
    return this;
  }

  async wait(pred, timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = this.events.find(pred);
      if (e) return e;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for an event');
      await new Promise((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => { clearTimeout(t); res(); });
      });
    }
  }

  stop() {
    this.controller.abort();
  }
}

const nodeRowId = async (api, name) => (await api.ok('GET', '/nodes')).items.find((n) => n.name === name).id;

describe('the API, three nodes', { concurrency: false }, () => {
  const api = {};

  before(async () => {
    lab('up', '3');
    await createCluster(3);
    for (const n of [1, 2, 3]) {
      await waitFor(`node${n}'s haven-httpd`, async () => {
        try {
          return (await fetch(`${base(n)}/status`)).status === 401;
        } catch {
          return false;
        }
      }, { timeoutMs: 30_000, intervalMs: 200 });
      api[n] = await new Api(n).login();
    }
  });

  after(() => {
    const pids = labProcesses();
    lab('down');
    assert.deepEqual(leftovers(pids), NOTHING_LEFT, 'down leaves nothing behind');
  });

  test('every_node_serves_the_cluster_s_status', async () => {
    for (const n of [1, 2, 3]) {
      const s = await api[n].ok('GET', '/status');
      assert.equal(s.quorate, true);
      assert.equal(s.node_name, `node${n}`);
      const who = await api[n].ok('GET', '/session');
      assert.equal(who.administrator, 'admin');
    }
  });

  test('every_route_needs_a_session', async () => {
    let checked = 0;
    for (const { method, path, op } of routes()) {
      // Public in the documented ways: the login, and setup routes while
      // a node is in no cluster (these nodes are in one: 409).
      if (method === 'POST' && path === '/session') continue;
      const r = await api[1].call(method, concrete(path), op.requestBody ? {} : undefined,
        { cookie: false, csrf: false });
      const expected = path.startsWith('/wizard/cluster-') ? 409 : 401;
      assert.equal(r.status, expected, `${method} ${path}: ${JSON.stringify(r.body)}`);
      const bogus = await api[1].call(method, concrete(path), op.requestBody ? {} : undefined,
        { cookie: false, csrf: false, headers: { Cookie: 'haven_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
      assert.equal(bogus.status, expected, `${method} ${path} (bogus cookie)`);
      checked++;
    }
    assert.ok(checked > 90);
  });

  test('every_write_needs_the_csrf_token', async () => {
    let checked = 0;
    for (const { method, path, op } of routes()) {
      if (method === 'GET' || path === '/session' && method === 'POST') continue;
      if (path.startsWith('/wizard/cluster-') || path.endsWith('/console/splice')) continue;
      const r = await api[2].call(method, concrete(path), op.requestBody ? {} : undefined, { csrf: false });
      assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'csrf');
      checked++;
    }
    assert.ok(checked > 50);
  });

  test('every_read_route_answers', async () => {
    for (const { method, path } of routes()) {
      if (method !== 'GET' || path.includes('{') || path === '/events') continue;
      const r = await api[3].call('GET', path);
      // The singletons may have no row yet.
      assert.ok(r.status === 200 || (path === '/infrastructure' && r.status === 404),
        `GET ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  });

  test('a_staged_write_is_activated_and_seen_through_another_node', async () => {
    const staged = await api[1].ok('POST', '/hosts', { name: 'web1', address: '198.18.0.9' }, [202]);
    assert.equal(staged.staged, true);
    // Staged changes are the cluster's: node 2 sees it and activates it.
    const changes = await api[2].ok('GET', '/changes');
    const mine = changes.items.find((c) => c.id === staged.change_id);
    assert.ok(mine, 'the staged change is visible on node2');
    assert.equal(mine.created_by, 'api:admin');
    const diff = await api[2].ok('GET', '/changes/diff');
    assert.ok(diff.changes.some((c) => c.ops.some((o) => o.op === 'insert' && o.table === 'hosts')));
    const { job_id: job } = await api[2].ok('POST', '/changes/activate');
    assert.ok(job > 0);
    // Node 3 has the host, and the job's log fills.
    await waitFor('web1 on node3', async () => (await api[3].ok('GET', '/hosts')).items.some((h) => h.name === 'web1'));
    const log = await waitFor('the job done', async () => {
      const l = await api[3].ok('GET', `/jobs/${job}/log`);
      return l.state === 'done' && l.items.length >= 3 && l;
    }, { timeoutMs: 30_000, intervalMs: 300 });
    const more = await api[3].ok('GET', `/jobs/${job}/log?after=${log.last_id}`);
    assert.equal(more.items.length, 0);
    const audit = await api[1].ok('GET', '/audit?limit=5');
    assert.ok(audit.items.some((a) => a.action === 'activate' && a.actor === 'api:admin'));
    // ?now=1 applies at once, everywhere.
    const added = await api[3].ok('POST', '/hosts?now=1', { name: 'web2', address: '198.18.0.10' }, [201]);
    await waitFor('web2 on node1', async () => (await api[1].call('GET', `/hosts/${added.id}`)).status === 200);
  });

  test('node_actions_apply_at_once', async () => {
    const id = await nodeRowId(api[1], 'node3');
    const r = await api[1].ok('POST', `/nodes/${id}/actions/maintenance`);
    assert.equal(r.state, 'maintenance');
    await waitFor('node3 in maintenance on node2',
      async () => (await api[2].ok('GET', `/nodes/${id}`)).state === 'maintenance');
    await api[2].ok('POST', `/nodes/${id}/actions/active`);
    const changes = await api[1].ok('GET', '/changes');
    assert.ok(!changes.items.some((c) => c.summary.includes('maintenance')), 'never staged');
  });

  test('a_fence_device_is_tested_before_it_is_added_then_used', async () => {
    const definition = {
      type: 'apc-snmp', address: '198.18.0.254',
      parameters: { snmp_version: '2c', community: 'private' },
    };
    const t = await api[1].ok('POST', '/fence-devices/test', definition);
    assert.equal(t.ok, true, t.message);
    assert.ok(t.details.outlet_count >= 3);
    const wrong = await api[1].ok('POST', '/fence-devices/test',
      { ...definition, parameters: { ...definition.parameters, community: 'wrong', timeout_ms: 200, retries: 0 } });
    assert.equal(wrong.ok, false);
    const bad = await api[1].call('POST', '/fence-devices/test', { ...definition, parameters: { snmp_version: '7' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'snmp_version');

    const { id: device } = await api[1].ok('POST', '/fence-devices?now=1',
      { name: 'pdu1', ...definition, parameters: { ...definition.parameters, outlets: 8 } }, [201]);
    for (const n of [1, 2, 3]) {
      await api[1].ok('POST', '/fence-outlets?now=1', { node_id: n, device_id: device, outlet: String(n) }, [201]);
    }
    const tested = await api[2].ok('POST', `/fence-devices/${device}/test`);
    assert.equal(tested.ok, true, tested.message);
    const check = await api[3].ok('GET', `/nodes/${await nodeRowId(api[3], 'node2')}/fence-check`);
    assert.equal(check.ok, true);
    // Every node's fencer checks the new device (each on its own clock).
    const fencing = await waitFor('pdu1 checked by every node, every node fenceable', async () => {
      const f = await api[1].ok('GET', '/fencing');
      return f.nodes.every((n) => n.fenceable) &&
        f.devices.filter((d) => d.device === 'pdu1' && d.health.ok).length === 3 && f;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.equal(fencing.nodes.length, 3);
  });

  test('fence_agents_are_listed_with_their_parameters', async () => {
    const { agents } = await api[2].ok('GET', '/fence-agents');
    assert.ok(agents.includes('fence_apc_snmp'));
    const { metadata } = await api[2].ok('GET', '/fence-agents/fence_apc_snmp');
    assert.ok(metadata.parameters.some((p) => p.name === 'community'));
  });

  test('the_dashboard_has_every_node_s_sample', async () => {
    const d = await waitFor('every node sampled', async () => {
      const dash = await api[2].ok('GET', '/dashboard');
      return dash.nodes.length === 3 && dash.nodes.every((n) => n.mem_total_mib > 0 && n.cpu_percent !== null) && dash;
    }, { timeoutMs: 20_000, intervalMs: 500 });
    // Joined nodes start in standby: the tile says whether all are active.
    const states = (await api[2].ok('GET', '/nodes')).items.map((n) => n.state);
    assert.equal(d.ha.nodes_total, 3);
    assert.equal(d.ha.nodes_active, states.filter((x) => x === 'active').length);
    assert.equal(d.ha.all_active, states.every((x) => x === 'active'));
    assert.equal(d.quorate, true);
    // The ETag spares the bytes.
    const first = await api[2].call('GET', '/dashboard');
    const again = await api[2].call('GET', '/dashboard', undefined,
      { headers: { 'If-None-Match': first.headers.get('etag') } });
    assert.ok(again.status === 304 || again.status === 200);
  });

  test('the_network_check_passes_the_interconnect', async () => {
    const r = await api[1].ok('POST', '/wizard/network-check', { address: address(2), mtu: 1500 });
    assert.equal(r.ok, true, r.message);
    assert.equal(r.received, 3);
    const big = await api[1].ok('POST', '/wizard/network-check', { address: address(2), mtu: 9000 });
    // The lab's veths take 1500: a jumbo frame does not pass.
    assert.equal(big.ok, false, big.message);
  });

  test('without_quorum_reads_answer_and_writes_are_503', async () => {
    lab('partition', '1', '2,3');
    try {
      await waitFor('node1 without quorum', async () => (await api[1].ok('GET', '/status')).quorate === false,
        { timeoutMs: 30_000, intervalMs: 300 });
      const hosts = await api[1].call('GET', '/hosts');
      assert.equal(hosts.status, 200);
      const dash = await api[1].call('GET', '/dashboard');
      assert.equal(dash.status, 200);
      const w = await api[1].call('POST', '/hosts?now=1', { name: 'lost', address: '198.18.0.11' });
      assert.equal(w.status, 503);
      assert.equal(w.body.error.code, 'no-quorum');
      assert.equal(w.body.error.message, 'the cluster has no quorum: the configuration is read-only');
      const staged = await api[1].call('POST', '/hosts', { name: 'lost', address: '198.18.0.11' });
      assert.equal(staged.status, 503);
    } finally {
      lab('heal');
    }
    await waitFor('converged after the heal', () => converged([1, 2, 3]), { timeoutMs: 60_000, intervalMs: 500 });
    await waitFor('node1 quorate again', async () => (await api[1].ok('GET', '/status')).quorate === true,
      { timeoutMs: 30_000, intervalMs: 300 });
    await api[1].ok('POST', '/hosts?now=1', { name: 'back', address: '198.18.0.12' }, [201]);
  });

  test('the_dashboard_follows_a_node_power_off_through_the_event_stream', async () => {
    const stream = await new EventStream(api[1]).open();
    try {
      const t0 = Date.now();
      lab('power', '3', 'off');
      const e = await stream.wait((x) => x.name === 'membership' && !x.data.members.includes(3), 30_000);
      const detected = e.at - t0;
      // Within a second of the event, the dashboard says so.
      const d = await waitFor('node3 offline on the dashboard', async () => {
        const dash = await api[1].ok('GET', '/dashboard');
        return dash.nodes.find((n) => n.name === 'node3').online === false && dash;
      }, { timeoutMs: 1_000, intervalMs: 50 });
      assert.ok(Date.now() - e.at <= 1_000, 'dashboard behind the event');
      assert.equal(d.ha.all_active, false);
      assert.ok(d.ha.details.some((x) => x.includes('node3')));
      console.error(`api: node3's power-off reached node1's event stream after ${detected} ms`);
    } finally {
      stream.stop();
      lab('power', '3', 'on');
    }
    await waitFor('node3 back', () => nodeStatus(3)?.power === 'on', { timeoutMs: 30_000 });
    await waitFor('converged', () => converged([1, 2, 3]), { timeoutMs: 90_000, intervalMs: 500 });
  });
});
