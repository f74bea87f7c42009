// SPDX-License-Identifier: LGPL-2.1-or-later
// The VM controller in the lab: real haven-vmd on three nodes, each with its
// own libvirtd and QEMU (TCG), real corosync, real haven-fenced switching
// the lab's power strip. The guests are the lab's test guest
// (tests/lab/guest-image: a boot sector that powers itself off on the ACPI
// power button or on a key press), its disk on the cluster share.
// What an administrator checks: HA VMs of a node that loses power run on
// the survivors after its fence, a sticky VM waits for its node, a VM
// fails back to its preferred node by live migration, maintenance empties a
// node by live migration, a guest that shuts itself down is started again,
// the lowest priority waits with its reason when memory runs out, the
// minority of a partition recovers nothing, a migration survives the loss
// of the manager's node, and without a working fence nothing is recovered.
// Throughout every test a watcher asks every node's libvirtd, several times
// a second, which VMs run there: no VM may ever run on two nodes.
// Bad inputs tried: a migrate command to a node that is not in the cluster,
// a command for a VM that does not exist, a migrate command without a
// target (refused by the domain, nothing written).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import {
  NOTHING_LEFT, initPid, lab, labProcesses, leftovers, nodeStatus, waitFor,
} from './lib/lab.mjs';
import {
  LAB_PASSWORD, createCluster as createClusterWith, domainCall, insertOp,
} from './lib/domain.mjs';
import { pduOutlet, pduSet } from './lib/pdu.mjs';
import { havenctl, havenctlTry } from './lib/havenctl.mjs';
import {
  createVm as createVmWith, guestShutdown, removeVm, safetyWatcher, vmCommand, waitCommand,
  whereRunning,
} from './lib/vm.mjs';

const createCluster = (n) => createClusterWith(n, waitFor);

async function submit(node, ops, actor = 'test') {
  const r = await domainCall(node, { request: 'submit', ops, actor });
  if (r.error) throw new Error(`submit on node${node}: ${JSON.stringify(r.error)}`);
  return r;
}

async function trySubmit(node, ops) {
  return domainCall(node, { request: 'submit', ops, actor: 'test' });
}

async function rows(node, table, where) {
  const r = await domainCall(node, { request: 'query', table, ...(where ? { where } : {}) });
  if (r.error) throw new Error(JSON.stringify(r.error));
  return r.rows;
}

// The first powered-on node, to talk to (the lab's record: no process).
function anyNode() {
  for (const n of [1, 2, 3]) if (initPid(n) !== null) return n;
  throw new Error('no node is on');
}

async function vmId(name) {
  const [vm] = await rows(anyNode(), 'vms', { name });
  return vm.id;
}

async function placement(name) {
  const id = await vmId(name);
  const [p] = await rows(anyNode(), 'vm_placements', { vm_id: id });
  return p;
}

async function waitRunning(name, node, timeoutMs = 30_000) {
  return waitFor(`${name} running on node${node}`, async () => {
    const p = await placement(name);
    const on = await whereRunning(name);
    return p?.state === 'running' && p.node_id === node && on.length === 1 && on[0] === node && p;
  }, { timeoutMs, intervalMs: 200 });
}

async function setNode(node, values) {
  const [row] = await rows(anyNode(), 'nodes', { node_id: node });
  await submit(anyNode(), [{ op: 'update', table: 'nodes', id: row.id, values }]);
}

// A running HA VM (64 MiB) with its own copy of the test guest.
function createVm(name, opts = {}) {
  return createVmWith(name, {
    memory: 64, ha: opts.ha ?? 'on', preferred: opts.preferred, priority: opts.priority,
    sticky: opts.sticky, values: { desired_state: 'running' }, node: anyNode(),
  });
}

const command = (name, cmd, target) => vmCommand(name, cmd, { target, node: anyNode() });
const commandDone = (id) => waitCommand(id, { node: anyNode() });

async function deleteVm(name) {
  const id = await vmId(name);
  const [vm] = await rows(anyNode(), 'vms', { id });
  await submit(anyNode(), [{ op: 'update', table: 'vms', id, values: { desired_state: 'stopped' } }]);
  await waitFor(`${name} stopped`, async () => (await placement(name))?.state === 'stopped',
    { timeoutMs: 40_000, intervalMs: 200 });
  await removeVm(vm.name, { node: anyNode() });
}

// Boots a node the way an administrator does after a fence: its outlet on
// (the fence switched it off), or, after a power cut that left the outlet
// on, the node's own power.
async function powerOn(node) {
  if (pduOutlet(node)?.on === false) pduSet(node, true);
  else lab('power', String(node), 'on');
  await waitFor(`node${node} powered`, () => initPid(node) !== null, { timeoutMs: 30_000 });
  await waitFor(`node${node} back with its agent`, async () => {
    const r = await domainCall(node, { request: 'status-read', node, prefix: 'vmd' }).catch(() => null);
    const s = await domainCall(anyNode(), { request: 'status' }).catch(() => null);
    return r?.entries?.some((e) => e.value?.ready) &&
      s?.members?.find((m) => m.id === node)?.online;
  }, { timeoutMs: 60_000, intervalMs: 500 });
}

async function fenceable(node, names) {
  const r = await domainCall(node, { request: 'status-read', prefix: 'fencing' });
  return names.every((n) => r.entries.some((e) => e.node !== Number(n.slice(4)) &&
    e.value?.nodes?.[n]?.ok));
}

// Logs in to node's haven-httpd (plain HTTP in the lab): the cookie.
async function login(node) {
  const r = await fetch(`http://198.18.0.${node}:8001/api/v1/session`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'admin', password: LAB_PASSWORD }),
  });
  assert.equal(r.status, 200, await r.text());
  return r.headers.get('set-cookie').split(';')[0];
}

// Opens the VM's console WebSocket on node's haven-httpd (a raw RFC 6455
// handshake: this Node has no WebSocket client) and resolves with the
// payload of the first binary message, as a string.
function consoleFirstMessage(node, vmId, cookie) {
  return new Promise((resolve, reject) => {
    const host = `198.18.0.${node}:8001`;
    const sock = connect(8001, `198.18.0.${node}`);
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('no console message in 10 s')); }, 10_000);
    sock.on('connect', () => sock.write([
      `GET /api/v1/vms/${vmId}/console HTTP/1.1`, `Host: ${host}`, 'Upgrade: websocket',
      'Connection: Upgrade', `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: binary', `Origin: http://${host}`,
      `Cookie: ${cookie}`, '', ''].join('\r\n')));
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        if (!/^HTTP\/1\.1 101/.test(head)) {
          clearTimeout(timer);
          sock.destroy();
          reject(new Error(`no upgrade: ${head}`));
          return;
        }
        upgraded = true;
        buf = buf.subarray(end + 4);
      }
      if (buf.length < 2) return;
      const opcode = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { len = buf.readUInt16BE(2); off = 4; }
      if (buf.length < off + len) return;
      clearTimeout(timer);
      sock.destroy();
      if (opcode !== 2) reject(new Error(`first message opcode ${opcode}`));
      else resolve(buf.subarray(off, off + len).toString('latin1'));
    });
  });
}

describe('VM controller (three lab nodes, real libvirtd + QEMU)', () => {
  let watch;

  before(async () => {
    lab('up', '3');
    await createCluster(3);
    await submit(1, [
      insertOp('fence_devices', {
        name: 'pdu1', type: 'apc-snmp', address: '198.18.0.254',
        parameters: { snmp_version: '2c', community: 'private', outlets: 8 },
      }),
      insertOp('fence_outlets', { node_id: 1, device_id: { ref: 0 }, outlet: '1' }),
      insertOp('fence_outlets', { node_id: 2, device_id: { ref: 0 }, outlet: '2' }),
      insertOp('fence_outlets', { node_id: 3, device_id: { ref: 0 }, outlet: '3' }),
    ]);
    for (const n of [1, 2, 3]) await setNode(n, { state: 'active' });
    await waitFor('every node fenceable', () => fenceable(1, ['node1', 'node2', 'node3']),
      { timeoutMs: 30_000, intervalMs: 500 });
    watch = safetyWatcher();
  });

  after(async () => {
    const violations = watch ? await watch.stop() : [];
    const stats = watch?.stats();
    const pids = labProcesses();
    lab('down');
    assert.deepEqual(leftovers(pids), NOTHING_LEFT, 'down leaves nothing behind');
    assert.deepEqual(violations, [], 'no VM ever ran on two nodes');
    // The watcher really looked, all along (a few rounds a second).
    assert.ok(stats.rounds > 100, `watcher rounds: ${stats.rounds}`);
  });

  test('vms_start_on_their_preferred_nodes_and_report_themselves', async () => {
    await createVm('web1', { preferred: 3, priority: 800 });
    await createVm('web2', { preferred: 3, priority: 300 });
    await createVm('pin3', { ha: 'sticky', sticky: 3 });
    for (const name of ['web1', 'web2', 'pin3']) await waitRunning(name, 3);
    const r = await domainCall(1, { request: 'status-read', node: 3, prefix: 'vm/web1' });
    const v = r.entries[0].value;
    assert.equal(v.state, 'running');
    assert.ok(v.vnc_port >= 5900, `a VNC port: ${v.vnc_port}`);
    assert.equal(v.generation, (await placement('web1')).generation);
    const s = await domainCall(2, { request: 'status' });
    assert.equal(s.manager.node_id, 1, 'node1 is the manager');
    // What an administrator reads.
    const list = havenctl(2, 'vm', 'list', '--json');
    const web1 = list.find((x) => x.name === 'web1');
    assert.equal(web1.node, 'node3');
    assert.equal(web1.state, 'running');
    assert.equal(web1.ha, 'on');
    assert.equal(list.find((x) => x.name === 'pin3').ha, 'sticky');
    // The console: web1's VNC on node3, opened through node1's haven-httpd
    // (node to node over the interconnect): QEMU's RFB greeting arrives.
    const greeting = await consoleFirstMessage(1, await vmId('web1'), await login(1));
    assert.match(greeting, /^RFB 003\.00\d\n/);
  });

  test('power_cut_fences_then_recovers_ha_vms_sticky_waits_and_failback_migrates', async () => {
    lab('power', '3', 'off');
    // Fenced first, then recovered on the survivors.
    const fence = await waitFor('node3 fenced', async () => {
      const f = (await rows(1, 'fence_requests', { node_id: 3 })).at(-1);
      return f?.state === 'done' && f;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    assert.match(fence.result, /node3 fenced at .* by pdu1 outlet 3/);
    const on = [];
    for (const name of ['web1', 'web2']) {
      const p = await waitFor(`${name} recovered`, async () => {
        const x = await placement(name);
        return x.state === 'running' && x.node_id !== 3 && (await whereRunning(name)).length === 1 && x;
      }, { timeoutMs: 30_000, intervalMs: 200 });
      assert.ok(p.updated_at >= fence.finished_at, 'recovered after the fence, not before');
      on.push(p.node_id);
    }
    // The sticky VM is not moved: it waits for node3.
    const pin = await placement('pin3');
    assert.equal(pin.node_id, 3);
    assert.equal(pin.state, 'waiting');
    assert.match(pin.reason, /sticky/);
    assert.deepEqual((await whereRunning('pin3')), []);

    // node3 comes back: nothing old is resurrected there; the sticky VM
    // starts there again and the VMs that prefer node3 migrate back.
    await powerOn(3);
    await waitRunning('pin3', 3, 60_000);
    for (const name of ['web1', 'web2']) await waitRunning(name, 3, 90_000);
    const jobs = await rows(1, 'job_log');
    for (const name of ['web1', 'web2']) {
      assert.ok(jobs.some((j) => j.line.includes(`vm '${name}': live migration from`) &&
        j.line.includes("to 'node3' done")), `${name} came back by live migration`);
      assert.equal((await placement(name)).restarts, 0);
    }
  });

  test('maintenance_evacuates_by_live_migration_and_active_brings_them_back', async () => {
    await createVm('mnt1', { preferred: 2 });
    await waitRunning('mnt1', 2);
    havenctl(1, 'node', 'maintenance', 'node2');
    const p = await waitFor('mnt1 moved off node2', async () => {
      const x = await placement('mnt1');
      return x.state === 'running' && x.node_id !== 2 && (await whereRunning('mnt1')).length === 1 && x;
    }, { timeoutMs: 60_000, intervalMs: 200 });
    assert.equal(p.restarts, 0, 'moved live, not restarted');
    const jobs = await rows(1, 'jobs');
    assert.ok(jobs.some((j) => j.kind === 'migrate' && j.state === 'done'));
    havenctl(1, 'node', 'active', 'node2');
    await waitRunning('mnt1', 2, 60_000);
    await deleteVm('mnt1');
  });

  test('a_guest_that_shuts_itself_down_is_started_again', async () => {
    await createVm('self1', { preferred: 1 });
    await waitRunning('self1', 1);
    const before = await placement('self1');
    await guestShutdown(1, 'self1');
    const p = await waitFor('self1 restarted', async () => {
      const x = await placement('self1');
      return x.restarts === 1 && x.state === 'running' && (await whereRunning('self1')).length === 1 && x;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    assert.equal(p.node_id, 1, 'restarted where it was');
    assert.ok(p.generation > before.generation);
    await deleteVm('self1');
  });

  test('commands_shutdown_start_reset_reboot_migrate_and_bad_ones', async () => {
    await createVm('cmd1', { preferred: 1 });
    await waitRunning('cmd1', 1);
    let c = await commandDone(await command('cmd1', 'reset'));
    assert.equal(c.state, 'done', c.result);
    // Through havenctl: an ACPI reboot (the test guest powers off, libvirt
    // starts it again inside the same QEMU): still running, no restart
    // counted.
    havenctl(1, 'vm', 'reboot', 'cmd1', '--no-wait');
    c = await waitFor('the reboot command', async () => {
      const x = (await rows(1, 'vm_commands')).filter((r) => r.command === 'reboot').at(-1);
      return x && (x.state === 'done' || x.state === 'failed') && x;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    assert.equal(c.state, 'done', c.result);
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(await whereRunning('cmd1'), [1]);
    assert.equal((await placement('cmd1')).restarts, 0);
    const unknown = havenctlTry(1, 'vm', 'start', 'no-such-vm');
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no-such-vm/);
    c = await commandDone(await command('cmd1', 'migrate', 2));
    // It prefers node1, which can take it: the move would be undone.
    assert.equal(c.state, 'failed');
    assert.match(c.result, /prefers node1/);
    c = await commandDone(await command('cmd1', 'shutdown'));
    assert.equal(c.state, 'done', c.result);
    assert.deepEqual((await whereRunning('cmd1')), []);
    assert.equal((await rows(1, 'vms', { name: 'cmd1' }))[0].desired_state, 'stopped');
    c = await commandDone(await command('cmd1', 'start'));
    assert.equal(c.state, 'done', c.result);
    await waitRunning('cmd1', 1);
    c = await commandDone(await command('cmd1', 'poweroff'));
    assert.equal(c.state, 'done', c.result);
    // Bad inputs: nothing written.
    const before = (await rows(1, 'vm_commands')).length;
    let r = await trySubmit(1, [insertOp('vm_commands', { vm_id: 9999, command: 'start' })]);
    assert.equal(r.error.code, 'invalid');
    r = await trySubmit(1, [insertOp('vm_commands', { vm_id: await vmId('cmd1'), command: 'migrate' })]);
    assert.equal(r.error.code, 'invalid');
    r = await trySubmit(1, [insertOp('vm_commands', { vm_id: await vmId('cmd1'), command: 'explode' })]);
    assert.equal(r.error.code, 'invalid');
    assert.equal((await rows(1, 'vm_commands')).length, before);
    await deleteVm('cmd1');
  });

  test('a_failed_migration_leaves_the_vm_running_where_it_was_with_the_error', async () => {
    await createVm('mf1');
    const from = (await waitFor('mf1 placed', async () => {
      const x = await placement('mf1');
      return x?.state === 'running' && x;
    }, { timeoutMs: 30_000, intervalMs: 200 })).node_id;
    const to = from === 1 ? 2 : 1;
    // The target refuses the memory stream (QEMU's migration ports).
    lab('exec', String(to), 'sh', '-c',
      'nft add table inet haven_test && ' +
      "nft add chain inet haven_test input '{ type filter hook input priority 0 ; }' && " +
      'nft add rule inet haven_test input tcp dport 49152-49215 reject with tcp reset');
    try {
      const c = await commandDone(await command('mf1', 'migrate', to));
      assert.equal(c.state, 'failed');
      assert.ok(c.result.length > 0, 'the command says why');
      assert.deepEqual(await whereRunning('mf1'), [from], 'it runs where it was');
      const p = await placement('mf1');
      assert.equal(p.state, 'running');
      assert.equal(p.node_id, from);
      const jobs = await rows(1, 'job_log');
      assert.ok(jobs.some((j) => /vm 'mf1': live migration .* failed after \d+ ms: .*; it keeps running/.test(j.line)),
        'the failed migration is recorded with its error');
    } finally {
      lab('exec', String(to), 'nft', 'delete', 'table', 'inet', 'haven_test');
    }
    await deleteVm('mf1');
  });

  test('capacity_exhausted_the_low_priority_vm_waits_with_its_reason', async () => {
    // node1 has room for one 64 MiB VM; node2 takes nothing new.
    await setNode(1, { memory_mib: 100, host_reserve_mib: 0 });
    await setNode(2, { state: 'standby' });
    await createVm('capHi', { preferred: 3, priority: 900 });
    await createVm('capLo', { preferred: 3, priority: 100 });
    await waitRunning('capHi', 3);
    await waitRunning('capLo', 3);
    // web1/web2/pin3 run on node3 too: web1 (800) and web2 (300) need room.
    lab('power', '3', 'off');
    const lo = await waitFor('capLo waiting with its reason', async () => {
      const x = await placement('capLo');
      return x.state === 'waiting' && /needs 64 MiB/.test(x.reason) && x;
    }, { timeoutMs: 40_000, intervalMs: 200 });
    assert.match(lo.reason, /needs 64 MiB; most free: node1 with \d+ MiB/);
    const hi = await waitFor('capHi recovered on node1', async () => {
      const x = await placement('capHi');
      return x.state === 'running' && x.node_id === 1 && x;
    }, { timeoutMs: 40_000, intervalMs: 200 });
    assert.equal(hi.node_id, 1);
    assert.deepEqual((await whereRunning('capLo')), []);
    await setNode(1, { memory_mib: 0, host_reserve_mib: 1024 });
    await setNode(2, { state: 'active' });
    await powerOn(3);
    for (const name of ['capHi', 'capLo', 'web1', 'web2', 'pin3']) {
      await waitRunning(name, 3, 90_000);
    }
    await deleteVm('capHi');
    await deleteVm('capLo');
  });

  test('the_minority_of_a_partition_recovers_nothing', async () => {
    await createVm('part1', { preferred: 1 });
    await waitRunning('part1', 1);
    const logBefore = lab('logs', '3', 'haven-vmd').split('\n').length;
    lab('partition', '1,2', '3');
    // node3 alone has no quorum: its vmd decides nothing and starts
    // nothing; the majority fences node3 and recovers its VMs.
    await waitFor('node3 fenced by the majority', () => initPid(3) === null,
      { timeoutMs: 40_000, intervalMs: 200 });
    lab('heal');
    const alone = lab('logs', '3', 'haven-vmd').split('\n').slice(logBefore - 1);
    assert.ok(alone.some((l) => /no quorum \(1 of 3 nodes here\): deciding nothing/.test(l)),
      `node3 knew it had no quorum:\n${alone.join('\n')}`);
    assert.deepEqual(alone.filter((l) => /: (start on|recover from|migrate from)|starting \(generation/.test(l)), [],
      'node3 decided and started nothing while alone');
    assert.deepEqual(await whereRunning('part1'), [1]);
    for (const name of ['web1', 'web2']) {
      await waitFor(`${name} recovered by the majority`, async () => {
        const x = await placement(name);
        return x.state === 'running' && x.node_id !== 3 && x;
      }, { timeoutMs: 40_000, intervalMs: 200 });
    }
    await powerOn(3);
    await waitRunning('web1', 3, 90_000);
    await waitRunning('web2', 3, 90_000);
    await deleteVm('part1');
  });

  test('the_managers_node_lost_mid_migration_the_next_manager_finishes', async () => {
    // node1 (the manager) takes no VMs, so the evacuation of node2 goes to
    // node3: a migration between two nodes that both survive.
    havenctl(2, 'node', 'standby', 'node1');
    await createVm('mig1', { preferred: 2 });
    await waitRunning('mig1', 2);
    havenctl(2, 'node', 'maintenance', 'node2');
    // The moment node1 has written the migration: cut node1.
    const m = await waitFor('mig1 migrating', async () => {
      const x = await placement('mig1');
      return x.state === 'migrating' && x;
    }, { timeoutMs: 30_000, intervalMs: 20 });
    assert.equal(m.target_node_id, 3);
    lab('power', '1', 'off');
    await waitRunning('mig1', 3, 60_000);
    const s = await domainCall(2, { request: 'status' });
    assert.equal(s.manager.node_id, 2, 'node2 took over as manager');
    const jobs = await rows(2, 'job_log');
    assert.ok(jobs.some((j) => /vm 'mig1': live migration from 'node2' to 'node3' done/.test(j.line)),
      'the migration itself finished');
    havenctl(2, 'node', 'active', 'node2');
    await waitRunning('mig1', 2, 60_000);
    await powerOn(1);
    havenctl(2, 'node', 'active', 'node1');
    await waitFor('node1 is the manager again', async () =>
      (await domainCall(2, { request: 'status' })).manager?.node_id === 1,
    { timeoutMs: 30_000, intervalMs: 300 });
    await deleteVm('mig1');
  });

  test('without_a_working_fence_nothing_is_recovered', async () => {
    await createVm('nofence', { preferred: 2 });
    await waitRunning('nofence', 2);
    lab('pdu', 'stop');
    try {
      lab('power', '2', 'off');
      const p = await waitFor('the fence failed', async () => {
        const x = await placement('nofence');
        return x.state === 'waiting' && /fencing node2 failed/.test(x.reason) && x;
      }, { timeoutMs: 60_000, intervalMs: 300 });
      assert.equal(p.node_id, 2);
      // And it stays so: nothing of node2 starts elsewhere.
      await new Promise((r) => setTimeout(r, 5000));
      assert.deepEqual((await whereRunning('nofence')), []);
      assert.equal((await placement('nofence')).state, 'waiting');
      const alerts = await rows(1, 'alerts');
      assert.ok(alerts.some((a) => a.severity === 'critical' && /node2/.test(a.message)));
    } finally {
      lab('pdu', 'start');
    }
    await powerOn(2);
    await waitRunning('nofence', 2, 90_000);
  });
});
