// SPDX-License-Identifier: LGPL-2.1-or-later
// The configuration domain in the lab, with real corosync: cluster create and
// join, writes seen everywhere, one order under concurrent writers, quorum
// and partitions, crash and power-cut recovery, a deleted database, bad
// socket input, join refusals, and a two-node cluster.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { NOTHING_LEFT, lab, labProcesses, labTry, leftovers, nodeStatus, waitFor } from './lib/lab.mjs';
import { havenctl, havenctlTry } from './lib/havenctl.mjs';
import {
  DomainClient, LAB_PASSWORD as PASSWORD, converged, createCluster as createClusterWith,
  domainCall, domainStatus, insertOp,
} from './lib/domain.mjs';

const createCluster = (n) => createClusterWith(n, waitFor);

const status = domainStatus;

async function submit(node, ops, actor = 'test') {
  return domainCall(node, { request: 'submit', ops, actor });
}

async function addHost(node, name, address = '198.18.9.1') {
  return submit(node, [insertOp('hosts', { name, address })]);
}

async function hostNames(node) {
  const r = await domainCall(node, { request: 'query', table: 'hosts' });
  return r.rows.map((h) => h.name).sort();
}

// A framed JSON request over TLS to a member's peer port (as a joining node
// would send it), for refusals that need a hand-made request.
function peerCall(address, req) {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: address, port: 8002, rejectUnauthorized: false }, () => {
      const text = Buffer.from(JSON.stringify(req));
      const head = Buffer.alloc(4);
      head.writeUInt32BE(text.length);
      s.write(Buffer.concat([head, text]));
    });
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        resolve(JSON.parse(buf.subarray(4, 4 + buf.readUInt32BE(0)).toString()));
        s.destroy();
      }
    });
    s.on('error', reject);
    s.setTimeout(15_000, () => { s.destroy(); reject(new Error('peer call timed out')); });
  });
}

function joinRequest(overrides) {
  return {
    request: 'join', admin: 'admin', password: PASSWORD, node_name: 'node9',
    address: '198.18.0.9', memory_mib: 512, time: Date.now() * 1000, ...overrides,
  };
}

describe('configuration domain, three nodes', { concurrency: false }, () => {
  before(async () => {
    lab('up', '3');
    await waitFor('domaind on every node', async () =>
      (await Promise.all([1, 2, 3].map((n) => status(n).catch(() => null)))).every(Boolean));
  });

  after(() => {
    const pids = labProcesses();
    lab('down');
    assert.deepEqual(leftovers(pids), NOTHING_LEFT, 'down leaves nothing behind');
  });

  test('a_fresh_node_is_read_only_and_says_why', async () => {
    const s = await status(1);
    assert.equal(s.quorate, false);
    assert.equal(s.version, 0);
    const r = await addHost(1, 'early');
    assert.equal(r.error.code, 'no-quorum');
    assert.match(r.error.message, /not connected to the cluster|no quorum/);
  });

  test('create_on_node1_and_join_nodes_2_and_3', async () => {
    const created = await domainCall(1, {
      request: 'cluster-create', name: 'labcluster', admin: 'admin', password: PASSWORD,
    });
    assert.equal(created.error, undefined, JSON.stringify(created.error));
    assert.equal(created.cluster, 'labcluster');
    assert.equal(created.node_id, 1);
    const corosync = nodeStatus(1).services.find((x) => x.name === 'corosync');
    assert.equal(corosync.state, 'running');
    for (const n of [2, 3]) {
      const j = await domainCall(n, {
        request: 'cluster-join', address: '198.18.0.1', admin: 'admin', password: PASSWORD,
      });
      assert.equal(j.error, undefined, `node${n} join: ${JSON.stringify(j.error)}`);
      assert.equal(j.node_id, n);
    }
    const s = await waitFor('all nodes converged', () => converged([1, 2, 3]), { timeoutMs: 60_000 });
    // The members reloaded their nodelist; nobody restarted corosync.
    assert.equal(nodeStatus(1).services.find((x) => x.name === 'corosync').pid, corosync.pid);
    for (const x of s) {
      assert.equal(x.quorate, true);
      assert.deepEqual(x.members.map((m) => [m.id, m.name, m.state, m.online]),
        [[1, 'node1', 'active', true], [2, 'node2', 'standby', true], [3, 'node3', 'standby', true]]);
    }
    // corosync's nodelist follows the domain on every node.
    const conf = labTry('exec', '3', 'cat', '/etc/corosync/corosync.conf').stdout;
    for (const n of [1, 2, 3]) assert.match(conf, new RegExp(`ring0_addr: 198\\.18\\.0\\.${n}`));
    assert.match(labTry('exec', '2', 'corosync-quorumtool', '-s').stdout, /Quorate:\s+Yes/);
  });

  test('creating_or_joining_twice_is_refused', async () => {
    const r = await domainCall(2, { request: 'cluster-create', name: 'other', admin: 'a', password: 'xxxxxxxx' });
    assert.equal(r.error.code, 'invalid');
    assert.match(r.error.message, /already part of the cluster/);
    const j = await domainCall(3, { request: 'cluster-join', address: '198.18.0.1', admin: 'admin', password: PASSWORD });
    assert.match(j.error.message, /already part of the cluster/);
  });

  test('a_write_on_any_node_is_visible_on_all_three', async () => {
    for (const n of [1, 2, 3]) {
      const r = await addHost(n, `from-node${n}`);
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      assert.ok(r.version > 0);
    }
    await waitFor('converged', () => converged([1, 2, 3]));
    for (const n of [1, 2, 3]) {
      assert.deepEqual(await hostNames(n), ['from-node1', 'from-node2', 'from-node3']);
    }
  });

  test('a_subscriber_hears_about_a_commit', async () => {
    const c = await DomainClient.connect(3);
    assert.deepEqual((await c.call({ request: 'subscribe', events: ['commit'] })).subscribed, true);
    const t0 = Date.now();
    const r = await addHost(1, 'watched');
    const ev = await c.waitEvent((e) => e.event === 'commit' && e.version === r.version);
    assert.deepEqual(ev.tables, ['hosts']);
    assert.ok(Date.now() - t0 < 2000);
    c.close();
  });

  test('a_stale_editor_gets_a_conflict', async () => {
    const [row] = (await domainCall(2, { request: 'query', table: 'hosts', where: { name: 'watched' } })).rows;
    const ok = await submit(1, [{ op: 'update', table: 'hosts', id: row.id, expect_version: row.version, values: { address: '198.18.9.2' } }]);
    assert.equal(ok.error, undefined);
    const stale = await submit(3, [{ op: 'update', table: 'hosts', id: row.id, expect_version: row.version, values: { address: '198.18.9.3' } }]);
    assert.equal(stale.error.code, 'conflict');
    await waitFor('converged', () => converged([1, 2, 3]));
    const [now] = (await domainCall(3, { request: 'query', table: 'hosts', where: { name: 'watched' } })).rows;
    assert.equal(now.address, '198.18.9.2');
  });

  test('three_nodes_writing_concurrently_end_in_one_order', async () => {
    const writes = [];
    for (let i = 0; i < 30; i++) {
      for (const n of [1, 2, 3]) writes.push(addHost(n, `c${n}-${i}`));
    }
    const results = await Promise.all(writes);
    assert.ok(results.every((r) => !r.error), JSON.stringify(results.find((r) => r.error)));
    const versions = results.map((r) => r.version);
    assert.equal(new Set(versions).size, versions.length, 'every transaction has its own version');
    const s = await waitFor('converged', () => converged([1, 2, 3]));
    assert.equal(s[0].version, Math.max(...versions));
    const lists = await Promise.all([1, 2, 3].map(hostNames));
    assert.deepEqual(lists[1], lists[0]);
    assert.deepEqual(lists[2], lists[0]);
  });

  test('bad_socket_input_gets_an_error_and_the_daemon_keeps_serving', async () => {
    // Tried: garbage bytes, a non-object, invalid JSON, a frame over the
    // 1 MiB limit, a truncated frame, an unknown request, a submit with a
    // missing field, an extra field, a wrong type, too many ops.
    const frames = [
      Buffer.from('this is not a frame at all'),
      Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from('[]')]),
      Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('{"a":')]),
      Buffer.from([0, 0x20, 0, 0]),
    ];
    for (const f of frames) {
      const c = await DomainClient.connect(2);
      c.sendRaw(f);
      await waitFor('connection closed', () => c.closed, { timeoutMs: 5000 });
    }
    const truncated = await DomainClient.connect(2);
    truncated.sendRaw(Buffer.from([0, 0, 0, 100, 0x7b]));
    truncated.close();
    const bad = [
      [{ request: 'no-such-request' }, 'request'],
      [{ request: 'submit', actor: 'x' }, 'ops'],
      [{ request: 'submit', ops: [insertOp('hosts', { name: 'a', address: '198.18.9.1' })], actor: 'x', extra: 1 }, null],
      [{ request: 'submit', ops: 'not-an-array', actor: 'x' }, 'ops'],
      [{ request: 'submit', ops: Array(1001).fill(insertOp('hosts', {})), actor: 'x' }, 'ops'],
      [{ request: 'query', table: 'no_such_table' }, 'table'],
    ];
    for (const [req, field] of bad) {
      const r = await domainCall(2, req);
      assert.ok(r.error, `refused: ${JSON.stringify(req).slice(0, 80)}`);
      if (field) assert.equal(r.error.field, field);
    }
    const before = (await status(2)).version;
    const r = await submit(2, [insertOp('hosts', { name: 'bad name!', address: '198.18.9.1' })]);
    assert.equal(r.error.code, 'invalid');
    assert.equal(r.error.field, 'name');
    assert.equal((await status(2)).version, before, 'a refused transaction changes nothing');
    assert.equal((await addHost(2, 'still-serving')).error, undefined);
  });

  test('join_is_refused_with_a_wrong_password_or_a_skewed_clock', async () => {
    const wrong = await peerCall('198.18.0.1', joinRequest({ password: 'wrong-password' }));
    assert.equal(wrong.error.code, 'denied');
    const unknown = await peerCall('198.18.0.1', joinRequest({ admin: 'nobody' }));
    assert.equal(unknown.error.code, 'denied');
    const skew = await peerCall('198.18.0.2', joinRequest({ time: (Date.now() - 3_600_000) * 1000 }));
    assert.equal(skew.error.code, 'time-skew');
    assert.match(skew.error.message, /differ by 3600 s/);
    const taken = await peerCall('198.18.0.1', joinRequest({ node_name: 'node2' }));
    assert.equal(taken.error.field, 'node_name');
    const s = await status(1);
    assert.equal(s.members.length, 3, 'no node was added');
  });

  test('partition_1_from_2_3_node1_refuses_writes_2_and_3_accept_then_node1_converges', async () => {
    lab('partition', '1', '2,3');
    await waitFor('node1 not quorate', async () => !(await status(1)).quorate, { timeoutMs: 30_000 });
    const refused = await addHost(1, 'minority');
    assert.equal(refused.error.code, 'no-quorum');
    assert.match(refused.error.message, /no quorum/);
    await waitFor('2 and 3 writable', async () => !(await addHost(2, 'majority')).error, { timeoutMs: 30_000 });
    assert.equal((await addHost(3, 'majority-2')).error, undefined);
    lab('heal');
    await waitFor('converged after heal', () => converged([1, 2, 3]), { timeoutMs: 60_000 });
    const names = await hostNames(1);
    assert.ok(names.includes('majority') && names.includes('majority-2'));
    assert.ok(!names.includes('minority'));
  });

  test('kill_9_domaind_during_writes_loses_no_acknowledged_transaction', async () => {
    const acknowledged = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const r = await addHost(1, `k-${i}`).catch(() => null);
        if (r && !r.error) acknowledged.push(`k-${i}`);
      }
    })();
    await waitFor('some writes', () => acknowledged.length >= 20);
    const victim = nodeStatus(3).processes.find((p) => p.comm === 'haven-domaind');
    process.kill(victim.pid, 'SIGKILL');
    await waitFor('domaind restarted on node3', () =>
      nodeStatus(3).services.find((s) => s.name === 'haven-domaind').restarts >= 1);
    await waitFor('more writes after the restart', () => acknowledged.length >= 60, { timeoutMs: 30_000 });
    stop = true;
    await writer;
    await waitFor('converged', () => converged([1, 2, 3]), { timeoutMs: 60_000 });
    for (const n of [1, 2, 3]) {
      const names = new Set(await hostNames(n));
      assert.ok(acknowledged.every((h) => names.has(h)), `node${n} has every acknowledged write`);
    }
  });

  test('power_off_a_node_during_writes_then_power_on_converges', async () => {
    const acknowledged = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const r = await addHost(1, `p-${i}`).catch(() => null);
        if (r && !r.error) acknowledged.push(`p-${i}`);
      }
    })();
    await waitFor('some writes', () => acknowledged.length >= 10);
    lab('power', '2', 'off');
    await waitFor('writes continue without node2', () => acknowledged.length >= 40, { timeoutMs: 30_000 });
    lab('power', '2', 'on');
    stop = true;
    await writer;
    await waitFor('converged after power on', () => converged([1, 2, 3]), { timeoutMs: 90_000 });
    const names = new Set(await hostNames(2));
    assert.ok(acknowledged.every((h) => names.has(h)));
  });

  test('a_deleted_database_file_is_restored_from_the_peers', async () => {
    const want = await hostNames(1);
    const dir = nodeStatus(3).dir;
    const db = join(dir, 'var-lib-haven', 'haven.db');
    assert.ok(existsSync(db));
    for (const f of ['', '-wal', '-shm']) rmSync(db + f, { force: true });
    await waitFor('the file is back', () => existsSync(db), { timeoutMs: 20_000 });
    await waitFor('converged', () => converged([1, 2, 3]), { timeoutMs: 60_000 });
    assert.deepEqual(await hostNames(3), want);
  });

  test('havenctl_status_json_shows_quorum_version_checksum_and_members', async () => {
    const s = havenctl(2, 'status', '--json');
    const d = await status(2);
    assert.equal(s.quorate, true);
    assert.equal(s.version, d.version);
    assert.equal(s.checksum, d.checksum);
    assert.deepEqual(s.members.map((m) => [m.name, m.id, m.state]),
      [['node1', 1, 'active'], ['node2', 2, 'standby'], ['node3', 3, 'standby']]);
    assert.match(havenctl(2, 'status'), /node3\s+3\s+standby\s+yes/);
  });

  test('staged_changes_are_seen_everywhere_and_activation_applies_them_with_a_job_log', async () => {
    const before = await status(1);
    havenctl(2, 'add', 'hosts', 'name=staged-a', 'address=198.18.9.7');
    havenctl(3, 'add', 'hosts', 'name=staged-b', 'address=198.18.9.8');
    await waitFor('converged', () => converged([1, 2, 3]));
    for (const n of [1, 2, 3]) {
      assert.equal(havenctl(n, 'changes', '--json').length, 2, `node${n} sees both staged changes`);
      assert.ok(!(await hostNames(n)).includes('staged-a'), 'staged, not applied');
    }
    const watcher = await DomainClient.connect(3);
    await watcher.call({ request: 'subscribe', events: ['job-log'] });
    const out = havenctl(1, 'activate', '--follow');
    assert.match(out, /Job \d+ done/);
    const [job] = havenctl(1, 'jobs', '--json').slice(-1);
    assert.equal(job.state, 'done');
    assert.equal(job.config_version, before.config_version + 1);
    const lines = havenctl(2, 'job', 'log', String(job.id), '--json');
    assert.deepEqual(lines.map((l) => l.node).sort(), ['node1', 'node2', 'node3'],
      'every node reported its reconcile step');
    await watcher.waitEvent((e) => e.event === 'job-log' && e.job_id === job.id);
    watcher.close();
    await waitFor('converged', () => converged([1, 2, 3]));
    for (const n of [1, 2, 3]) {
      const names = await hostNames(n);
      assert.ok(names.includes('staged-a') && names.includes('staged-b'));
      assert.equal(havenctl(n, 'changes', '--json').length, 0);
      assert.equal((await status(n)).config_version, before.config_version + 1);
    }
  });

  test('discard_drops_the_staged_changes', async () => {
    havenctl(1, 'add', 'hosts', 'name=never', 'address=198.18.9.9');
    assert.equal(havenctl(3, 'changes', '--json').length, 1);
    havenctl(2, 'discard');
    await waitFor('converged', () => converged([1, 2, 3]));
    assert.equal(havenctl(1, 'changes', '--json').length, 0);
    assert.ok(!(await hostNames(1)).includes('never'));
    const nothing = havenctlTry(1, 'activate');
    assert.equal(nothing.status, 1);
    assert.match(nothing.stderr, /nothing to activate/);
  });

  test('status_entries_are_seen_everywhere_and_vanish_when_their_node_leaves', async () => {
    // Bad inputs tried: a key over 128 characters, a value over 64 KiB, a
    // missing value.
    assert.equal((await domainCall(3, { request: 'status-publish', key: 'k'.repeat(129), value: 1 })).error.field, 'key');
    assert.equal((await domainCall(3, { request: 'status-publish', key: 'big', value: 'x'.repeat(70_000) })).error.field, 'value');
    assert.equal((await domainCall(3, { request: 'status-publish', key: 'nothing' })).error.field, 'value');
    const watcher = await DomainClient.connect(1);
    await watcher.call({ request: 'subscribe', events: ['status'] });
    assert.equal((await domainCall(3, { request: 'status-publish', key: 'test/load', value: { cpu: 0.5 } })).ok, true);
    await watcher.waitEvent((e) => e.event === 'status' && e.node === 3 && e.key === 'test/load' && e.value?.cpu === 0.5);
    for (const n of [1, 2]) {
      const r = await domainCall(n, { request: 'status-read', node: 3, prefix: 'test/' });
      assert.deepEqual(r.entries, [{ node: 3, key: 'test/load', value: { cpu: 0.5 } }]);
    }
    lab('power', '3', 'off');
    await watcher.waitEvent((e) => e.event === 'status' && e.node === 3 && e.key === 'test/load' && e.value === null, 30_000);
    assert.deepEqual((await domainCall(2, { request: 'status-read', node: 3 })).entries, []);
    watcher.close();
    lab('power', '3', 'on');
    await waitFor('converged after power on', () => converged([1, 2, 3]), { timeoutMs: 90_000 });
  });

  test('a_divergent_database_is_found_by_the_periodic_check_and_repaired', async () => {
    const want = await hostNames(1);
    // Change a row behind domaind's back on node2 (as a disk error might).
    const db = join(nodeStatus(2).dir, 'var-lib-haven', 'haven.db');
    const r = labTry('exec', '2', 'sqlite3', '/var/lib/haven/haven.db',
      "UPDATE hosts SET name = 'tampered' WHERE name = 'from-node1'");
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(db));
    assert.ok((await hostNames(2)).includes('tampered'));
    await waitFor('node2 repaired by the periodic check', async () =>
      JSON.stringify(await hostNames(2)) === JSON.stringify(want), { timeoutMs: 40_000, intervalMs: 500 });
    await waitFor('converged', () => converged([1, 2, 3]));
  });

  test('remove_takes_a_node_out_of_the_domain_and_the_nodelist', async () => {
    const r = await domainCall(1, { request: 'node-remove', node: 'node3', actor: 'admin' });
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    await waitFor('node3 gone from the members', async () =>
      (await status(1)).members.every((m) => m.id !== 3), { timeoutMs: 30_000 });
    await waitFor('node3 forgot the cluster', async () => {
      const s = await status(3);
      return s.version === 0 && !s.connected;
    }, { timeoutMs: 30_000 });
    const conf = labTry('exec', '1', 'cat', '/etc/corosync/corosync.conf').stdout;
    assert.doesNotMatch(conf, /198\.18\.0\.3/);
    assert.equal((await addHost(1, 'after-remove')).error, undefined);
  });
});

describe('configuration domain, two nodes', { concurrency: false }, () => {
  before(async () => {
    lab('up', '2');
    await waitFor('domaind on both nodes', async () =>
      (await Promise.all([1, 2].map((n) => status(n).catch(() => null)))).every(Boolean));
  });

  after(() => {
    const pids = labProcesses();
    lab('down');
    assert.deepEqual(leftovers(pids), NOTHING_LEFT, 'down leaves nothing behind');
  });

  test('a_two_node_cluster_keeps_working_when_one_node_is_powered_off', async () => {
    await createCluster(2);
    const conf = labTry('exec', '1', 'cat', '/etc/corosync/corosync.conf').stdout;
    assert.match(conf, /two_node: 1/);
    assert.equal((await addHost(1, 'both-up')).error, undefined);
    lab('power', '2', 'off');
    await waitFor('node1 writes alone', async () => !(await addHost(1, 'alone')).error, { timeoutMs: 30_000 });
    lab('power', '2', 'on');
    await waitFor('converged', () => converged([1, 2]), { timeoutMs: 90_000 });
    assert.deepEqual(await hostNames(2), ['alone', 'both-up']);
  });
});
