// SPDX-License-Identifier: LGPL-2.1-or-later
// Fencing in the lab: real haven-fenced on every node, the lab's APC PDU
// simulator (a real net-snmp agent whose outlet i powers node i), Debian's
// fence_apc_snmp for the fence-agent path. What an administrator checks:
// the node is off and every process of it gone, the request says who fenced
// it with what, a node never fences itself, two requests make one operation,
// a broken level 1 falls back to level 2, an unreachable strip fails the
// request with an alert and nothing recorded as fenced, and in a two-node
// split exactly one node survives.
// Bad inputs tried: a wrong community, an unknown parameter, a parameter of
// the wrong type, an outlet out of range, a device definition without an
// address, an agent that is not installed, unknown requests and fields on
// fenced's socket.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NOTHING_LEFT, initPid, lab, labProcesses, leftovers, nodeStatus, waitFor,
} from './lib/lab.mjs';
import { havenctl, havenctlTry } from './lib/havenctl.mjs';
import {
  DomainClient, converged, createCluster as createClusterWith, domainCall, insertOp,
} from './lib/domain.mjs';
import { pduSet, pduStart, pduStatus, pduStop } from './lib/pdu.mjs';

const createCluster = (n) => createClusterWith(n, waitFor);

async function submit(node, ops, actor = 'test') {
  const r = await domainCall(node, { request: 'submit', ops, actor });
  if (r.error) throw new Error(`submit on node${node}: ${JSON.stringify(r.error)}`);
  return r;
}

async function rows(node, table, where) {
  const r = await domainCall(node, { request: 'query', table, ...(where ? { where } : {}) });
  if (r.error) throw new Error(JSON.stringify(r.error));
  return r.rows;
}

function fencedCall(node, req) {
  return DomainClient.connectPath(`/proc/${initPid(node)}/root/run/haven/fenced.sock`)
    .then(async (c) => {
      try {
        return await c.call(req);
      } finally {
        c.close();
      }
    });
}

const poweredOn = (n) => nodeStatus(n)?.power === 'on';

// Waits for request id (read on node) to leave pending/running.
async function finished(node, id, timeoutMs = 60_000) {
  return waitFor(`fence request ${id} finished`, async () => {
    const [row] = await rows(node, 'fence_requests', { id });
    return row && (row.state === 'done' || row.state === 'failed') && row;
  }, { timeoutMs, intervalMs: 200 });
}

async function requestFence(node, victimId, action = 'off') {
  const r = await submit(node, [insertOp('fence_requests', { node_id: victimId, action, reason: 'test' })]);
  return r.results[0].id;
}

// Switches node i's outlet back on and waits until it is a member again.
async function restore(i, members) {
  pduSet(i, true);
  await waitFor(`node${i} powered on`, () => poweredOn(i), { timeoutMs: 30_000 });
  await waitFor(`node${i} back in the domain`, () => converged(members), { timeoutMs: 90_000, intervalMs: 500 });
}

async function fenceable(node, names) {
  const s = havenctl(node, 'fence', 'status', '--json');
  return names.every((n) => s.nodes.find((v) => v.node === n)?.fenceable) && s;
}

describe('fencing, three nodes', { concurrency: false }, () => {
  let pdu1;

  before(async () => {
    lab('up', '3');
    await createCluster(3);
    const r = await submit(1, [
      insertOp('fence_devices', {
        name: 'pdu1', type: 'apc-snmp', address: '198.18.0.254',
        parameters: { snmp_version: '2c', community: 'private', outlets: 8 },
      }),
      insertOp('fence_outlets', { node_id: 1, device_id: { ref: 0 }, outlet: '1' }),
      insertOp('fence_outlets', { node_id: 2, device_id: { ref: 0 }, outlet: '2' }),
      // By name: the simulator's outlet 3 is called node3.
      insertOp('fence_outlets', { node_id: 3, device_id: { ref: 0 }, outlet: 'node3' }),
    ]);
    pdu1 = r.results[0].id;
    await waitFor('every node fenceable', () => fenceable(1, ['node1', 'node2', 'node3']),
      { timeoutMs: 30_000, intervalMs: 500 });
  });

  after(() => {
    const pids = labProcesses();
    lab('down');
    assert.deepEqual(leftovers(pids), NOTHING_LEFT, 'down leaves nothing behind');
  });

  test('every_node_checks_every_device_and_publishes_it', async () => {
    const s = await waitFor('pdu1 seen from three nodes', async () => {
      const st = havenctl(2, 'fence', 'status', '--json');
      return st.devices.filter((d) => d.device === 'pdu1' && d.health.ok).length === 3 && st;
    }, { timeoutMs: 20_000, intervalMs: 500 });
    const d = s.devices.find((x) => x.device === 'pdu1');
    assert.equal(d.health.model, 'rPDU');
    assert.equal(d.health.outlet_count, 8);
    assert.deepEqual(s.nodes.map((n) => n.fenceable), [true, true, true]);
  });

  test('fence_test_reads_the_device_without_switching', async () => {
    const before = pduStatus().outlets.map((o) => o.on);
    const r = havenctl(1, 'fence', 'test', 'pdu1', '--json');
    assert.equal(r.ok, true, r.message);
    assert.equal(r.details.outlet_count, 8);
    assert.deepEqual(r.details.outlets.map((o) => o.state), ['on', 'on', 'on']);
    const check = havenctl(3, 'fence', 'check', 'node2', '--json');
    assert.equal(check.ok, true);
    assert.equal(check.parts[0].result.details.outlets[0].state, 'on');
    assert.deepEqual(pduStatus().outlets.map((o) => o.on), before, 'nothing was switched');
  });

  test('wrong_settings_are_refused_with_the_parameter_named', async () => {
    // A wrong community: v2c gives no answer at all, so it is a timeout.
    await submit(1, [insertOp('fence_devices', {
      name: 'pdu-wrong', type: 'apc-snmp', address: '198.18.0.254',
      parameters: { snmp_version: '2c', community: 'wrong', timeout_ms: 300, retries: 0 },
    })]);
    const wrong = havenctlTry(1, 'fence', 'test', 'pdu-wrong', '--json');
    assert.equal(wrong.status, 1);
    assert.equal(wrong.json.ok, false);
    assert.equal(wrong.json.code, 'timeout');
    assert.match(wrong.json.message, /no answer from 198\.18\.0\.254/);

    const bad = async (definition, field, outlets) => {
      const r = await fencedCall(1, { request: 'device-test', definition, ...(outlets ? { outlets } : {}) });
      const err = r.error ?? (r.ok === false ? r : null);
      assert.ok(err, `${JSON.stringify(definition)} must be refused`);
      assert.equal(err.field, field, JSON.stringify(r));
      return r;
    };
    const apc = { type: 'apc-snmp', address: '198.18.0.254' };
    await bad({ ...apc, parameters: { comunity: 'private' } }, 'comunity');
    await bad({ ...apc, parameters: { port: 'snmp' } }, 'port');
    await bad({ ...apc, parameters: { retries: 99 } }, 'retries');
    await bad({ ...apc, parameters: { outlets: 0 } }, 'outlets');
    await bad({ type: 'apc-snmp' }, 'address');
    await bad({ ...apc, parameters: { snmp_version: '2c' }, extra: 1 }, 'extra');
    await bad({ type: 'fence-agent', parameters: { agent: 'fence_nonexistent' } }, 'agent');
    await bad({ type: 'fence-agent', address: '198.18.0.254', parameters: { agent: 'fence_apc_snmp', no_such_option: 1 } }, 'no_such_option');
    const out = await fencedCall(1, {
      request: 'device-test', definition: { ...apc, parameters: { snmp_version: '2c' } }, outlets: ['9'],
    });
    assert.equal(out.ok, false);
    assert.equal(out.code, 'no-such-outlet');
    assert.match(out.message, /9/);

    const unknown = await fencedCall(1, { request: 'explode' });
    assert.equal(unknown.error.code, 'invalid');
    const extra = await fencedCall(1, { request: 'node-check', node: 'node2', bogus: true });
    assert.equal(extra.error.code, 'invalid');
    await submit(1, [{ op: 'delete', table: 'fence_devices', id: (await rows(1, 'fence_devices', { name: 'pdu-wrong' }))[0].id }]);
  });

  test('fence_node_switches_the_outlet_off_and_records_who_did_it', async () => {
    const procs = nodeStatus(3).processes.map((p) => p.pid);
    assert.ok(procs.length > 3);
    const r = havenctlTry(1, 'fence', 'node', 'node3', '--reason', 'test');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /done: node3 fenced at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by pdu1 outlet node3 \(level 1\), verified off in \d+ ms/);
    assert.equal(pduStatus().outlets[2].on, false);
    await waitFor('every process of node3 gone', () => leftovers(procs).processes.length === 0 && !poweredOn(3));
    const [row] = (await rows(1, 'fence_requests', { node_id: 3 })).slice(-1);
    assert.equal(row.state, 'done');
    assert.equal(row.executor_node_id, 1);
    assert.equal(row.device, 'pdu1');
    assert.equal(row.level, 1);
    assert.equal(row.requested_by, 'havenctl:root');
    const audit = await rows(1, 'audit');
    assert.ok(audit.some((a) => a.detail.startsWith('node3 fenced at') && a.actor === 'fenced@node1'),
      'the outcome with its timing is in the audit log');
    await restore(3, [1, 2, 3]);
  });

  test('a_node_never_fences_itself', async () => {
    // Asked on node 1 for node 1: node 2 (the lowest other) carries it out.
    const id = await requestFence(1, 1);
    const row = await finished(2, id);
    assert.equal(row.state, 'done', row.result);
    assert.equal(row.executor_node_id, 2);
    assert.equal(poweredOn(1), false);
    await restore(1, [1, 2, 3]);
    await waitFor('node1 fenceable again', () => fenceable(2, ['node1']), { timeoutMs: 20_000, intervalMs: 500 });
  });

  test('two_simultaneous_requests_for_a_node_make_one_operation', async () => {
    const before = (await rows(1, 'fence_requests', { node_id: 3 })).length;
    const ask = (node) => domainCall(node, {
      request: 'submit', actor: `test${node}`,
      ops: [insertOp('fence_requests', { node_id: 3, reason: `from node${node}` })],
    });
    const answers = await Promise.all([ask(1), ask(2)]);
    const accepted = answers.filter((a) => !a.error);
    const refused = answers.filter((a) => a.error);
    assert.equal(accepted.length, 1, JSON.stringify(answers));
    assert.equal(refused[0].error.field, 'node_id');
    const row = await finished(1, accepted[0].results[0].id);
    assert.equal(row.state, 'done', row.result);
    assert.equal((await rows(1, 'fence_requests', { node_id: 3 })).length, before + 1);
    await restore(3, [1, 2, 3]);
  });

  test('a_node_on_two_outlets_is_off_only_when_both_are', async () => {
    // Dual power supplies: node3 also on outlet 7 (the simulator powers no
    // node from it), same level: both are switched and verified.
    const r = await submit(1, [insertOp('fence_outlets', { node_id: 3, device_id: pdu1, outlet: '7', level: 1 })]);
    const id = await requestFence(2, 3);
    const row = await finished(2, id);
    assert.equal(row.state, 'done', row.result);
    assert.match(row.result, /by pdu1 outlets (node3, 7|7, node3) \(level 1\)/);
    const outlets = pduStatus().outlets;
    assert.equal(outlets[2].on, false);
    assert.equal(outlets[6].on, false);
    await submit(1, [{ op: 'delete', table: 'fence_outlets', id: r.results[0].id }]);
    pduSet(7, true);
    await restore(3, [1, 2, 3]);
  });

  test('level_two_fences_when_level_one_fails', async () => {
    const [o3] = await rows(1, 'fence_outlets', { node_id: 3 });
    const r = await submit(1, [
      insertOp('fence_devices', {
        name: 'pdu-bad', type: 'apc-snmp', address: '198.18.0.254',
        parameters: { community: 'wrong', timeout_ms: 300, retries: 0 },
      }),
      { op: 'update', table: 'fence_outlets', id: o3.id, values: { level: 2 } },
      insertOp('fence_outlets', { node_id: 3, device_id: { ref: 0 }, outlet: '3', level: 1 }),
    ]);
    const id = await requestFence(2, 3);
    const row = await finished(2, id);
    assert.equal(row.state, 'done', row.result);
    assert.equal(row.level, 2);
    assert.equal(row.device, 'pdu1');
    assert.equal(poweredOn(3), false);
    await submit(1, [
      { op: 'delete', table: 'fence_devices', id: r.results[0].id },
      { op: 'update', table: 'fence_outlets', id: o3.id, values: { level: 1 } },
    ]);
    await restore(3, [1, 2, 3]);
  });

  test('the_fence_agent_path_runs_fence_apc_snmp', async () => {
    const [o3] = await rows(1, 'fence_outlets', { node_id: 3 });
    const r = await submit(1, [
      insertOp('fence_devices', {
        name: 'pdu-agent', type: 'fence-agent', address: '198.18.0.254',
        parameters: { agent: 'fence_apc_snmp', community: 'private', snmp_version: '2c' },
      }),
      { op: 'update', table: 'fence_outlets', id: o3.id, values: { level: 2 } },
      insertOp('fence_outlets', { node_id: 3, device_id: { ref: 0 }, outlet: '3', level: 1 }),
    ]);
    const test1 = havenctl(1, 'fence', 'test', 'pdu-agent', '--json');
    assert.equal(test1.ok, true, test1.message);
    const meta = havenctl(1, 'fence', 'agent', 'fence_apc_snmp', '--json');
    assert.ok(meta.parameters.some((p) => p.name === 'community'));
    const id = await requestFence(1, 3);
    const row = await finished(1, id);
    assert.equal(row.state, 'done', row.result);
    assert.equal(row.device, 'pdu-agent');
    assert.equal(row.level, 1);
    assert.equal(poweredOn(3), false);
    await submit(1, [
      { op: 'delete', table: 'fence_devices', id: r.results[0].id },
      { op: 'update', table: 'fence_outlets', id: o3.id, values: { level: 1 } },
    ]);
    await restore(3, [1, 2, 3]);
  });

  test('reboot_switches_off_verifies_and_switches_on_again', async () => {
    const before = initPid(3);
    const r = havenctlTry(2, 'fence', 'node', 'node3', '--action', 'reboot');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /done: node3 rebooted at .* by pdu1 outlet node3 \(level 1\), verified off, then on in \d+ ms/);
    assert.equal(pduStatus().outlets[2].on, true);
    await waitFor('node3 booted again', () => poweredOn(3) && initPid(3) !== before, { timeoutMs: 30_000 });
    await waitFor('node3 back in the domain', () => converged([1, 2, 3]), { timeoutMs: 90_000, intervalMs: 500 });
  });

  test('manual_fencing_waits_for_an_administrator_and_records_who_confirmed', async () => {
    const [o3] = await rows(1, 'fence_outlets', { node_id: 3 });
    const r = await submit(1, [
      insertOp('fence_devices', { name: 'by-hand', type: 'manual' }),
      { op: 'update', table: 'fence_outlets', id: o3.id, values: { level: 2 } },
      insertOp('fence_outlets', { node_id: 3, device_id: { ref: 0 }, outlet: 'rack-a', level: 1 }),
    ]);
    const id = await requestFence(1, 3);
    const waiting = await waitFor('the request waits for a person', async () => {
      const [row] = await rows(1, 'fence_requests', { id });
      return row.result.startsWith('waiting for an administrator') && row;
    }, { timeoutMs: 20_000, intervalMs: 200 });
    assert.equal(waiting.state, 'running');
    assert.equal(poweredOn(3), true, 'nothing is switched');
    const alerts = await rows(1, 'alerts', { source: 'fencing', node: 'node3' });
    assert.ok(alerts.some((a) => a.severity === 'warning' && a.message.startsWith('waiting for an administrator')));
    // Still waiting a while later: manual fencing has no timeout.
    await new Promise((res) => setTimeout(res, 3000));
    assert.equal((await rows(1, 'fence_requests', { id }))[0].state, 'running');

    const c = havenctlTry(2, 'fence', 'confirm', 'node3');
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stdout, /node3 confirmed off at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d by havenctl:root \(manual fencing\)/);
    const [done] = await rows(1, 'fence_requests', { id });
    assert.equal(done.state, 'done');
    const audit = await rows(1, 'audit');
    assert.ok(audit.some((a) => a.actor === 'havenctl:root' && a.node === 'node2' && a.detail.startsWith('node3 confirmed off')));
    const none = havenctlTry(2, 'fence', 'confirm', 'node3');
    assert.equal(none.status, 1);
    assert.match(none.stderr, /no open fence request for node3/);
    await submit(1, [
      { op: 'delete', table: 'fence_devices', id: r.results[0].id },
      { op: 'update', table: 'fence_outlets', id: o3.id, values: { level: 1 } },
    ]);
  });

  test('an_unreachable_power_strip_fails_the_request_and_raises_an_alert', async () => {
    pduStop();
    try {
      await waitFor('pdu1 seen failing', async () => {
        const s = havenctl(1, 'fence', 'status', '--json');
        return s.nodes.every((n) => !n.fenceable) && s;
      }, { timeoutMs: 20_000, intervalMs: 500 });
      const started = Date.now();
      const id = await requestFence(1, 3);
      const row = await finished(1, id, 60_000);
      assert.equal(row.state, 'failed');
      assert.match(row.result, /fencing node3 failed after \d+ ms: .*no answer from 198\.18\.0\.254/);
      assert.ok(Date.now() - started < 40_000, 'bounded by the request timeout');
      assert.equal(poweredOn(3), true, 'nothing happened to node3');
      const alerts = await rows(1, 'alerts', { source: 'fencing' });
      assert.ok(alerts.some((a) => a.severity === 'critical' && a.node === 'node3' && a.message === row.result));
      assert.equal((await rows(1, 'fence_requests', { id }))[0].device, null);
    } finally {
      pduStart();
    }
    await waitFor('every node fenceable again', () => fenceable(1, ['node1', 'node2', 'node3']),
      { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(pdu1 > 0);
  });
});

describe('fencing race, two nodes', { concurrency: false }, () => {
  before(async () => {
    lab('up', '2');
    await createCluster(2);
    await submit(1, [
      insertOp('fence_devices', {
        name: 'pdu1', type: 'apc-snmp', address: '198.18.0.254',
        parameters: { snmp_version: '2c', community: 'private' },
      }),
      insertOp('fence_outlets', { node_id: 1, device_id: { ref: 0 }, outlet: '1' }),
      insertOp('fence_outlets', { node_id: 2, device_id: { ref: 0 }, outlet: '2' }),
    ]);
    // node1 should survive a split: fencing *it* waits 3 s.
    const [n1] = await rows(1, 'nodes', { node_id: 1 });
    await submit(1, [{ op: 'update', table: 'nodes', id: n1.id, values: { fence_delay_ms: 3000 } }]);
    await waitFor('both nodes fenceable', () => fenceable(1, ['node1', 'node2']),
      { timeoutMs: 30_000, intervalMs: 500 });
  });

  after(() => {
    const pids = labProcesses();
    lab('down');
    assert.deepEqual(leftovers(pids), NOTHING_LEFT, 'down leaves nothing behind');
  });

  test('both_sides_ask_at_once_and_exactly_one_node_survives', async () => {
    lab('partition', '1', '2');
    try {
      await waitFor('each side alone and quorate', async () => {
        const [a, b] = await Promise.all([1, 2].map((n) => domainCall(n, { request: 'status' })));
        const alone = (s) => s.quorate && s.members.filter((m) => m.online).length === 1;
        return alone(a) && alone(b);
      }, { timeoutMs: 30_000, intervalMs: 200 });
      await Promise.all([requestFence(1, 2), requestFence(2, 1)]);
      await waitFor('one node powered off', () => poweredOn(1) !== poweredOn(2), { timeoutMs: 30_000 });
      // Past node1's delay: node2 is gone and never fenced node1.
      await new Promise((r) => setTimeout(r, 5000));
      assert.equal(poweredOn(1), true, 'node1 (with the delay on itself) survives');
      assert.equal(poweredOn(2), false);
      assert.equal(pduStatus().outlets[0].on, true);
      assert.equal(pduStatus().outlets[1].on, false);
    } finally {
      lab('heal');
    }
    pduSet(2, true);
    await waitFor('node2 back', () => converged([1, 2]), { timeoutMs: 90_000, intervalMs: 500 });
    // node2's old request for node1 is never carried out.
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(poweredOn(1), true);
  });
});
