// SPDX-License-Identifier: LGPL-2.1-or-later
// The lab itself, with real corosync and real libvirtd + QEMU: three nodes,
// membership and quorum, a partition and its healing, a VM, a power cut and
// a reboot. These are the checks every later system test builds on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  LAB, NOTHING_LEFT, lab, labExec, labProcesses, labTry, leftovers, nodeStatus, processAlive,
  quorum, status, waitFor,
} from './lib/lab.mjs';
import { spawn } from 'node:child_process';

const VM_XML = `<domain type='qemu'>
  <name>tiny</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
</domain>`;

const allQuorate = (nodes, count) => () =>
  nodes.every((n) => {
    const q = quorum(n);
    return q && q.quorate && q.members.length === count;
  });

describe('lab', { concurrency: false }, () => {
  before(() => {
    lab('up', '3');
  });

  after(() => {
    const pids = labProcesses();
    lab('down');
    assert.deepEqual(leftovers(pids), NOTHING_LEFT, 'down leaves nothing behind');
  });

  test('three_nodes_boot_with_their_own_libvirtd', () => {
    const s = status();
    assert.equal(s.nodes.length, 3);
    for (const n of s.nodes) {
      assert.equal(n.power, 'on');
      assert.equal(n.address, `198.18.0.${n.index}`);
      const libvirtd = n.services.find((x) => x.name === 'libvirtd');
      assert.equal(libvirtd.state, 'running');
      assert.ok(n.processes.some((p) => p.comm === 'libvirtd'), `libvirtd runs in ${n.name}`);
    }
    assert.equal(labExec(2, 'hostname').trim(), 'node2');
    assert.match(labExec(2, 'ip', '-br', 'addr', 'show', 'eth0'), /198\.18\.0\.2\/24/);
  });

  test('node_state_directories_are_private', () => {
    labExec(1, 'sh', '-c', 'echo one > /var/lib/haven/marker');
    assert.equal(labExec(1, 'cat', '/var/lib/haven/marker').trim(), 'one');
    assert.notEqual(labTry('exec', '2', 'cat', '/var/lib/haven/marker').status, 0);
    // /run is private too: each node has its own libvirt socket.
    assert.notEqual(nodeStatus(1).init_pid, nodeStatus(2).init_pid);
  });

  test('nodes_reach_each_other_and_the_host_over_the_interconnect', () => {
    labExec(1, 'ping', '-c', '1', '-W', '2', '198.18.0.3');
    labExec(3, 'ping', '-c', '1', '-W', '2', '198.18.0.254');
  });

  test('supervisor_restarts_a_crashed_daemon', async () => {
    const before1 = nodeStatus(3);
    const libvirtd = before1.processes.find((p) => p.comm === 'libvirtd');
    process.kill(libvirtd.pid, 'SIGKILL');
    const restarted = await waitFor('libvirtd restarted on node3', () => {
      const svc = nodeStatus(3).services.find((x) => x.name === 'libvirtd');
      return svc.state === 'running' && svc.restarts === 1 && svc.pid !== libvirtd.ns_pid && svc;
    });
    assert.equal(restarted.restarts, 1);
    await waitFor('libvirtd answers on node3', () =>
      labTry('exec', '3', 'virsh', '-c', 'qemu:///system', 'version').status === 0);
  });

  test('corosync_forms_a_quorate_three_node_membership', async () => {
    lab('corosync', '--token', '1000');
    const dir = status().nodes[0].dir;
    const conf = readFileSync(join(dir, 'etc-corosync', 'corosync.conf'), 'utf8');
    assert.match(conf, /transport:\s*knet/);
    assert.match(conf, /crypto_cipher:\s*aes256/);
    assert.match(conf, /crypto_hash:\s*sha256/);
    assert.match(conf, /token:\s*1000\b/);
    const keys = status().nodes.map((n) => readFileSync(join(n.dir, 'etc-corosync', 'authkey')).toString('hex'));
    assert.ok(keys[0].length >= 256, 'authkey generated');
    assert.ok(keys.every((k) => k === keys[0]), 'same authkey on every node');
    await waitFor('3 quorate members', allQuorate([1, 2, 3], 3), { timeoutMs: 60_000 });
    assert.deepEqual(quorum(1).members, [1, 2, 3]);
  });

  test('partition_1_from_2_3_leaves_node1_without_quorum', async () => {
    lab('partition', '1', '2,3');
    await waitFor('node1 not quorate, 2 and 3 quorate', () => {
      const q1 = quorum(1), q2 = quorum(2), q3 = quorum(3);
      return q1 && !q1.quorate && q1.members.length === 1 &&
        q2?.quorate && q3?.quorate && q2.members.join() === '2,3' && q3.members.join() === '2,3';
    }, { timeoutMs: 30_000 });
  });

  test('heal_brings_back_three_members', async () => {
    lab('heal');
    await waitFor('3 quorate members again', allQuorate([1, 2, 3], 3), { timeoutMs: 30_000 });
  });

  let qemuPid;
  test('a_tiny_qemu_vm_runs_under_node2_libvirtd', async () => {
    const r = labTry('exec', '2', 'sh', '-c', `cat > /tmp/tiny-node2.xml <<'XML'\n${VM_XML}\nXML\nvirsh -q -c qemu:///system create /tmp/tiny-node2.xml && rm /tmp/tiny-node2.xml`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(labExec(2, 'virsh', '-c', 'qemu:///system', 'domstate', 'tiny').trim(), 'running');
    const qemu = await waitFor('the QEMU process of node2', () =>
      nodeStatus(2).processes.find((p) => p.comm.startsWith('qemu-system')));
    qemuPid = qemu.pid;
    assert.ok(processAlive(qemuPid));
    // Only node2 runs it.
    assert.equal(labTry('exec', '1', 'virsh', '-c', 'qemu:///system', 'domstate', 'tiny').status, 1);
  });

  test('power_off_node2_removes_it_from_the_membership_and_kills_its_vm', async () => {
    const init = nodeStatus(2).init_pid;
    lab('power', '2', 'off');
    assert.equal(nodeStatus(2).power, 'off');
    assert.ok(!processAlive(init), 'node2 PID 1 is gone');
    assert.ok(!processAlive(qemuPid), 'the VM process is gone');
    await waitFor('1 and 3 quorate without node2', () => {
      const q1 = quorum(1), q3 = quorum(3);
      return q1?.quorate && q3?.quorate && q1.members.join() === '1,3' && q3.members.join() === '1,3';
    }, { timeoutMs: 30_000 });
    assert.notEqual(labTry('exec', '2', 'true').status, 0, 'a powered-off node runs nothing');
  });

  test('power_on_node2_rejoins', async () => {
    lab('power', '2', 'on');
    await waitFor('3 quorate members after the reboot', allQuorate([1, 2, 3], 3), { timeoutMs: 60_000 });
    // Its persistent state survived; the VM (a transient domain) did not.
    assert.ok(readFileSync(join(nodeStatus(2).dir, 'etc-corosync', 'corosync.conf'), 'utf8').includes('node2'));
    await waitFor('libvirtd on node2', () =>
      labTry('exec', '2', 'virsh', '-c', 'qemu:///system', 'version').status === 0);
    assert.equal(labExec(2, 'virsh', '-q', '-c', 'qemu:///system', 'list', '--all').trim(), '');
  });

  test('bad_lab_commands_are_refused_without_changes', () => {
    for (const args of [['power', '9', 'off'], ['power', '1', 'sideways'], ['partition', '1', '1,2'],
      ['exec', 'nodeX', 'true'], ['up', '99'], ['service', '1', 'start', 'nosuchservice']]) {
      const r = labTry(...args);
      assert.notEqual(r.status, 0, `haven-lab ${args.join(' ')} must fail`);
      assert.ok(r.stderr.length > 0, `haven-lab ${args.join(' ')} says why`);
    }
    assert.equal(status().nodes.filter((n) => n.power === 'on').length, 3);
    assert.equal(status().partition, null);
  });
});

describe('lab recovery', { concurrency: false }, () => {
  test('up_after_an_interrupted_up_works_and_down_leaves_nothing', async () => {
    // Kill `haven-lab up` part-way (as a crash or ^C would), then up again.
    const child = spawn(LAB, ['up', '3'], { stdio: 'ignore' });
    await waitFor('the first node exists', () => labTry('status', '--json').stdout.includes('"power":"on"'),
      { timeoutMs: 60_000, intervalMs: 50 });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    lab('up', '2');
    const s = status();
    assert.equal(s.nodes.length, 2);
    assert.ok(s.nodes.every((n) => n.power === 'on'));
    assert.equal(labExec(2, 'hostname').trim(), 'node2');
    const pids = labProcesses();
    lab('down');
    assert.deepEqual(leftovers(pids), NOTHING_LEFT);
    assert.equal(labTry('status').stdout.trim(), 'lab is down');
  });
});
