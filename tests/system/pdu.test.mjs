// SPDX-License-Identifier: LGPL-2.1-or-later
// The lab's power strip (haven-pdusim) driven by the clients Haven's fencing
// relies on: Debian's fence_apc_snmp inside a node (SNMP v1, v2c and v3:
// status, list, off, on, reboot, and an outlet's node really losing power)
// and net-snmp's tools (access control, the old MasterSwitch table, the
// device-wide command, a switching delay), `haven-lab pdu stop|start`, and
// private simulators on 127.0.0.1 for the MasterSwitch model, restarts, the
// power command and bad command lines.
//
// Bad inputs tried: a wrong community (fence_apc_snmp and snmpget: no
// answer), a SET with the read-only community (v1 and v2c), SNMPv3 without
// privacy and with a wrong pass phrase, out-of-range command values
// (rPDUOutletControlOutletCommand 5, sPDUOutletCtl 7, rPDUOutletDevCommand 1),
// a SET of a read-only column, an outlet name of 21 characters and one with a
// control character, a string where an INTEGER belongs, and command lines
// with bad numbers, addresses, names, models, communities and pass phrases.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LAB_DIR, NOTHING_LEFT, initPid, lab, labProcesses, leftovers, nodeStatus, processAlive, waitFor,
} from './lib/lab.mjs';
import {
  DEV_ALL_OFF, DEV_ALL_ON, DEV_ALL_REBOOT, OFF, OID, ON, PDUSIM, REBOOT, fenceApcSnmp,
  fenceApcSnmpLocal, pduOutlet, pduStart, pduStatus, pduStop, pduTarget, snmp, snmpGet, snmpSet,
  snmpWalk, startPduSimulator, stopPduSimulators,
} from './lib/pdu.mjs';

const libvirtdRunning = (node) => {
  const n = nodeStatus(node);
  return n.power === 'on' && n.services.some((s) => s.name === 'libvirtd' && s.state === 'running') && n;
};

// Every object the strip serves below .318, in the order a walk must list them.
function expectedApcOids(outlets) {
  const apc = '.1.3.6.1.4.1.318.1.1';
  const column = (prefix) => Array.from({ length: outlets }, (_, i) => `${apc}.${prefix}.${i + 1}`);
  return [
    `${apc}.4.4.1.0`, ...column('4.4.2.1.3'), ...column('4.4.2.1.4'),
    `${apc}.12.1.8.0`, `${apc}.12.3.1.1.0`, `${apc}.12.3.1.3.0`, `${apc}.12.3.1.4.0`,
    ...column('12.3.3.1.1.2'), ...column('12.3.3.1.1.4'), ...column('12.3.4.1.1.2'),
    ...column('12.3.5.1.1.2'), ...column('12.3.5.1.1.4'), ...column('12.3.5.1.1.5'),
  ];
}

const pduLog = () => readFileSync(join(LAB_DIR, 'pdu', 'pdusim.log'), 'utf8');

describe('the lab power strip', { concurrency: false }, () => {
  let target;

  before(() => {
    lab('up', '3');
    target = pduTarget();
  });

  after(() => {
    const pids = labProcesses();
    const pdu = pduStatus().pid;
    assert.ok(pids.includes(pdu), 'the simulator is one of the lab processes');
    lab('down');
    assert.deepEqual(leftovers(pids), NOTHING_LEFT, 'down leaves nothing behind, the simulator included');
  });

  test('up_starts_a_strip_with_an_outlet_named_after_each_node', () => {
    const s = pduStatus();
    assert.equal(s.running, true);
    assert.ok(processAlive(s.pid));
    assert.equal(s.address, '198.18.0.254');
    assert.equal(s.port, 161);
    assert.equal(s.delay_ms, 0);
    assert.deepEqual(s.outlets.map((o) => o.name),
      ['node1', 'node2', 'node3', 'Outlet 4', 'Outlet 5', 'Outlet 6', 'Outlet 7', 'Outlet 8']);
    assert.ok(s.outlets.every((o) => o.on));
    assert.deepEqual(JSON.parse(lab('status', '--json')).pdu.outlets, s.outlets);
  });

  test('a_walk_lists_every_object_in_oid_order', () => {
    const walked = snmpWalk(target, OID.apc);
    assert.deepEqual(walked.map(([oid]) => oid), expectedApcOids(8));
    const system = snmpWalk(target, OID.system, { version: '1' });
    assert.deepEqual(system.map(([oid]) => oid),
      ['.1.3.6.1.2.1.1.1.0', '.1.3.6.1.2.1.1.2.0', '.1.3.6.1.2.1.1.3.0', '.1.3.6.1.2.1.1.5.0']);
    assert.equal(system[1][1], '.1.3.6.1.4.1.318.1.3.4.5');
    assert.equal(snmpGet(target, OID.numOutlets), 8);
  });

  test('fence_apc_snmp_status_and_list_work_over_v1_v2c_and_v3', () => {
    for (const kind of ['v1', 'v2c', 'v3']) {
      const status = fenceApcSnmp(1, kind, ['-n', '3', '-o', 'status']);
      assert.equal(status.status, 0, `${kind} status: ${status.stderr}`);
      assert.match(status.stdout, /Status: ON/);
      const list = fenceApcSnmp(1, kind, ['-o', 'list']);
      assert.equal(list.status, 0, `${kind} list: ${list.stderr}`);
      assert.match(list.stdout, /^1,node1$/m);
      assert.match(list.stdout, /^3,node3$/m);
      assert.match(list.stdout, /^8,Outlet 8$/m);
    }
    // A plug given by name is found by walking the names.
    assert.equal(fenceApcSnmp(1, 'v2c', ['-n', 'node2', '-o', 'status']).status, 0);
  });

  test('fence_apc_snmp_off_cuts_node3_power_and_on_boots_it_again', async () => {
    const init = initPid(3);
    assert.ok(init, 'node3 runs');
    const off = fenceApcSnmp(1, 'v1', ['-n', '3', '-o', 'off']);
    assert.equal(off.status, 0, off.stderr);
    assert.match(off.stdout, /Success: Powered OFF/);
    assert.equal(pduOutlet(3).on, false);
    await waitFor('node3 without power', () => !processAlive(init) && nodeStatus(3).power === 'off',
      { timeoutMs: 20_000 });
    const status = fenceApcSnmp(1, 'v3', ['-n', '3', '-o', 'status']);
    assert.equal(status.status, 2, 'status of an off plug exits 2');
    assert.match(status.stdout, /Status: OFF/);
    assert.equal(initPid(2) !== null && initPid(1) !== null, true, 'the other nodes keep power');

    const on = fenceApcSnmp(1, 'v3', ['-n', '3', '-o', 'on']);
    assert.equal(on.status, 0, on.stderr);
    assert.match(on.stdout, /Success: Powered ON/);
    const booted = await waitFor('node3 booted with libvirtd', () => libvirtdRunning(3), { timeoutMs: 30_000 });
    assert.notEqual(booted.init_pid, init);
    assert.match(pduLog(), /SET from 198\.18\.0\.1:\d+, v1 community "private": outlet 3 \("node3"\) rPDUOutletControlOutletCommand\.3 = 2: accepted/);
    assert.match(pduLog(), /v3 user "haven": outlet 3 \("node3"\) rPDUOutletControlOutletCommand\.3 = 1: accepted/);
  });

  test('fence_apc_snmp_reboot_power_cycles_node2', async () => {
    const init = initPid(2);
    const reboot = fenceApcSnmp(1, 'v2c', ['-n', 'node2', '-o', 'reboot']);
    assert.equal(reboot.status, 0, reboot.stderr);
    assert.match(reboot.stdout, /Success: Rebooted/);
    await waitFor('node2 back with a new PID 1', () => {
      const n = libvirtdRunning(2);
      return n && n.init_pid !== init;
    }, { timeoutMs: 30_000 });
    assert.ok(!processAlive(init), 'the old node2 is gone');
    assert.equal(pduOutlet(2).on, true);
  });

  test('a_wrong_community_gets_no_answer_and_changes_nothing', () => {
    const init = initPid(3);
    const off = fenceApcSnmp(1, 'wrong', ['-n', '3', '-o', 'off']);
    assert.equal(off.status, 1, off.stdout);
    assert.match(off.stderr, /Timeout: No Response/);
    assert.equal(pduOutlet(3).on, true);
    assert.equal(initPid(3), init, 'node3 was not touched');
  });

  test('a_set_with_the_read_only_community_is_refused', () => {
    const v2c = snmpSet(target, OID.outletCommand(3), OFF, { community: 'public' });
    assert.notEqual(v2c.status, 0);
    assert.match(v2c.stderr, /noAccess/);
    const v1 = snmpSet(target, OID.outletCommand(3), OFF, { version: '1', community: 'public' });
    assert.notEqual(v1.status, 0);
    assert.match(v1.stderr, /noSuchName/);
    assert.equal(snmpGet(target, OID.outletState(3)), ON);
    assert.equal(pduOutlet(3).on, true);
    assert.match(pduLog(), /v2c community "public": rPDUOutletControlOutletCommand\.3 = 2: refused by access control/);
  });

  test('the_old_masterswitch_table_and_the_device_wide_command_switch_outlets', async () => {
    assert.equal(snmpGet(target, OID.sPDUOutletCtlName(3)), 'node3');
    let r = snmpSet(target, OID.sPDUOutletCtl(5), OFF, { version: '1' });
    assert.equal(r.status, 0, r.stderr);
    // The outlet reads off once the lab's power command has run.
    await waitFor('outlet 5 reads off', () => snmpGet(target, OID.outletState(5)) === OFF,
      { timeoutMs: 5_000, intervalMs: 50 });
    assert.equal(snmpGet(target, OID.sPDUOutletCtl(5)), OFF);
    assert.equal(snmpGet(target, OID.outletCommand(5)), OFF);
    assert.equal(pduOutlet(5).on, false);
    r = snmpSet(target, OID.sPDUOutletCtl(5), 7);
    assert.match(r.stderr, /wrongValue/, 'delayed commands are refused');

    r = snmpSet(target, OID.devCommand, DEV_ALL_ON);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(snmpGet(target, OID.outletState(5)), ON);
    assert.equal(snmpGet(target, OID.devCommand), 1, 'a GET answers noCommandAll');
    assert.ok(pduStatus().outlets.every((o) => o.on));
  });

  test('a_switching_delay_keeps_the_command_pending_until_it_happens', async () => {
    pduStart({ delayMs: 1500 });
    assert.equal(pduStatus().delay_ms, 1500);
    const r = snmpSet(target, OID.outletCommand(6), OFF);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(snmpGet(target, OID.outletPending(6)), 1, 'pending');
    assert.equal(snmpGet(target, OID.outletState(6)), ON, 'still on during the delay');
    await waitFor('outlet 6 off after the delay',
      () => snmpGet(target, OID.outletState(6)) === OFF && snmpGet(target, OID.outletPending(6)) === 2,
      { timeoutMs: 5_000 });
    pduStart();
    assert.equal(pduStatus().delay_ms, 0);
  });

  test('a_stopped_strip_cannot_fence_and_a_started_one_keeps_its_outlets', () => {
    const pid = pduStatus().pid;
    pduStop();
    const s = pduStatus();
    assert.equal(s.running, false);
    assert.ok(!processAlive(pid), 'exactly the recorded simulator is gone');
    assert.equal(s.outlets.find((o) => o.outlet === 6).on, false, 'states are still known');
    const status = fenceApcSnmp(1, 'v1', ['-n', '1', '-o', 'status']);
    assert.equal(status.status, 1, 'an unreachable strip fails');
    assert.ok(initPid(1) && initPid(2) && initPid(3), 'nodes keep power while the strip is down');

    pduStart();
    assert.equal(pduStatus().running, true);
    assert.equal(fenceApcSnmp(1, 'v1', ['-n', '1', '-o', 'status']).status, 0);
    assert.equal(fenceApcSnmp(1, 'v1', ['-n', '6', '-o', 'status']).status, 2, 'outlet 6 is still off');
    assert.equal(snmpSet(target, OID.outletCommand(6), ON).status, 0);
  });
});

describe('a private power strip simulator on 127.0.0.1', { concurrency: false }, () => {
  after(stopPduSimulators);

  test('the_masterswitch_model_is_fenced_through_the_old_table', async () => {
    const sim = await startPduSimulator(['--model', 'masterswitch', '--outlets', '4',
      '--outlet-name', '2=db']);
    try {
      assert.equal(snmpGet(sim.target, OID.sysObjectID), '.1.3.6.1.4.1.318.1.3.4.2');
      const list = fenceApcSnmpLocal(sim, ['-c', 'private', '-o', 'list']);
      assert.equal(list.status, 0, list.stderr);
      assert.match(list.stdout, /^2,db$/m);
      const off = fenceApcSnmpLocal(sim, ['-c', 'private', '-n', 'db', '-o', 'off']);
      assert.equal(off.status, 0, off.stderr);
      assert.equal(snmpGet(sim.target, OID.sPDUOutletCtl(2)), OFF);
      assert.equal(fenceApcSnmpLocal(sim, ['-c', 'private', '-n', '2', '-o', 'status']).status, 2);
      const on = fenceApcSnmpLocal(sim, ['-d', '2c', '-c', 'private', '-n', '2', '-o', 'on']);
      assert.equal(on.status, 0, on.stderr);
      assert.equal(snmpGet(sim.target, OID.outletState(2)), ON);
      // The agent took the MasterSwitch path: it wrote sPDUOutletCtl.
      assert.match(sim.log(), /outlet 2 \("db"\) sPDUOutletCtl\.2 = 2: accepted/);
      assert.match(sim.log(), /outlet 2 \("db"\) sPDUOutletCtl\.2 = 1: accepted/);
    } finally {
      assert.equal(await sim.stop(), 0);
    }
  });

  test('outlet_states_names_and_the_v3_user_survive_a_restart', async () => {
    const v3 = ['--v3-user', 'admin', '--v3-auth-password', 'auth-pass-1', '--v3-priv-password', 'priv-pass-1'];
    const v3client = ['-v3', '-u', 'admin', '-l', 'authPriv', '-a', 'SHA', '-A', 'auth-pass-1',
      '-x', 'AES', '-X', 'priv-pass-1'];
    const first = await startPduSimulator(['--outlets', '3', ...v3], { stateDir: true });
    let r = spawnSync('snmpset', ['-m', '', ...v3client, first.target, OID.outletCommand(1), 'i', '2'],
      { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(snmpSet(first.target, OID.outletConfigName(2), 'web', {}, 's').status, 0);
    assert.match(snmpSet(first.target, OID.outletConfigName(2), 'x'.repeat(21), {}, 's').stderr, /wrongLength/);
    assert.match(snmpSet(first.target, OID.outletConfigName(2), 'a\tb', {}, 's').stderr, /wrongValue/);
    assert.match(snmpSet(first.target, OID.outletConfigName(2), 5).stderr, /wrongType/);
    assert.match(snmpSet(first.target, OID.outletState(2), 2).stderr, /notWritable/);
    assert.equal(await first.stop(), 0, 'SIGTERM ends it cleanly');
    assert.ok(!existsSync(join(first.dir, 'pdusim.pid')), 'its PID file is removed');
    const saved = JSON.parse(readFileSync(join(first.stateDir, 'outlets.json'), 'utf8'));
    assert.deepEqual(saved.outlets, [
      { outlet: 1, name: 'Outlet 1', on: false },
      { outlet: 2, name: 'web', on: true },
      { outlet: 3, name: 'Outlet 3', on: true },
    ]);

    const second = await startPduSimulator(['--outlets', '3', ...v3], { stateDir: true, dir: first.dir });
    try {
      assert.equal(snmpGet(second.target, OID.outletState(1)), OFF);
      assert.equal(snmpGet(second.target, OID.outletStatusName(2)), 'web');
      assert.equal(snmpGet(second.target, OID.sPDUOutletCtlName(2)), 'web');
      r = spawnSync('snmpget', ['-m', '', '-Oqv', ...v3client, second.target, OID.outletState(1)],
        { encoding: 'utf8' });
      assert.equal(r.status, 0, `v3 after a restart: ${r.stderr}`);
      assert.equal(r.stdout.trim(), '2');
      // Access control: v3 without privacy, and a wrong pass phrase.
      r = spawnSync('snmpget', ['-m', '', '-v3', '-u', 'admin', '-l', 'authNoPriv', '-a', 'SHA',
        '-A', 'auth-pass-1', '-t', '1', '-r', '0', second.target, OID.outletState(1)], { encoding: 'utf8' });
      assert.notEqual(r.status, 0);
      assert.match(r.stdout + r.stderr, /authorizationError/);
      r = spawnSync('snmpget', ['-m', '', '-v3', '-u', 'admin', '-l', 'authPriv', '-a', 'SHA',
        '-A', 'wrong-pass-1', '-x', 'AES', '-X', 'priv-pass-1', '-t', '1', '-r', '0', second.target,
        OID.outletState(1)], { encoding: 'utf8' });
      assert.notEqual(r.status, 0);
      // An unknown community gets no answer at all.
      r = snmp('snmpget', second.target, [OID.outletState(1)], { community: 'nobody', timeout: 0.3 });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /Timeout/);
    } finally {
      assert.equal(await second.stop(), 0);
    }
  });

  test('the_power_command_runs_once_per_real_change_in_order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'haven-pdusim-'));
    const script = join(dir, 'power');
    const calls = join(dir, 'calls');
    writeFileSync(script, `#!/bin/sh\necho "$1 $2" >> '${calls}'\n`);
    chmodSync(script, 0o755);
    const sim = await startPduSimulator(['--outlets', '3', '--power-command', script], { dir });
    const lines = () => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : []);
    try {
      assert.equal(snmpSet(sim.target, OID.outletCommand(1), ON).status, 0);
      assert.equal(snmpSet(sim.target, OID.outletCommand(1), 5).status, 2, 'delayed on is refused');
      assert.equal(snmpSet(sim.target, OID.devCommand, 1).status, 2, 'noCommandAll cannot be set');
      assert.equal(snmpSet(sim.target, OID.devCommand, DEV_ALL_OFF).status, 0);
      await waitFor('three off commands', () => lines().length === 3);
      assert.deepEqual(lines().sort(), ['1 off', '2 off', '3 off']);
      // All outlets are off: the reboot's off changes nothing, its on does.
      assert.equal(snmpSet(sim.target, OID.devCommand, DEV_ALL_REBOOT).status, 0);
      assert.equal(snmpGet(sim.target, OID.outletPending(2)), 1);
      await waitFor('three on commands', () => lines().length === 6, { timeoutMs: 5_000 });
      assert.deepEqual(lines().slice(3).sort(), ['1 on', '2 on', '3 on']);
      assert.equal(snmpGet(sim.target, OID.outletPending(2)), 2);
      // One outlet's reboot: off, then on, in that order.
      assert.equal(snmpSet(sim.target, OID.outletCommand(3), REBOOT).status, 0);
      await waitFor('outlet 3 off and on again', () => lines().length === 8, { timeoutMs: 5_000 });
      assert.deepEqual(lines().slice(6), ['3 off', '3 on']);
      assert.equal(snmpGet(sim.target, OID.outletState(3)), ON);
    } finally {
      assert.equal(await sim.stop(), 0);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a_cancelled_delayed_switch_never_happens', async () => {
    const sim = await startPduSimulator(['--outlets', '2', '--delay-ms', '300']);
    try {
      assert.equal(snmpSet(sim.target, OID.outletCommand(1), OFF).status, 0);
      assert.equal(snmpGet(sim.target, OID.outletPending(1)), 1);
      assert.equal(snmpSet(sim.target, OID.outletCommand(1), 7).status, 0, 'cancelPendingCommand');
      assert.equal(snmpGet(sim.target, OID.outletPending(1)), 2);
      // Past the delay: nothing switched.
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(snmpGet(sim.target, OID.outletState(1)), ON);
    } finally {
      assert.equal(await sim.stop(), 0);
    }
  });

  test('bad_command_lines_exit_2_with_a_reason', () => {
    for (const args of [['--outlets', '0'], ['--outlets', '49'], ['--outlets', '4x'],
      ['--listen', '127.0.0.1'], ['--listen', 'localhost:161'], ['--listen', '127.0.0.1:70000'],
      ['--outlets', '2', '--outlet-name', '3=x'], ['--outlet-name', '1=' + 'x'.repeat(21)],
      ['--outlet-name', '1=a', '--outlet-name', '1=b'], ['--delay-ms', '-5'], ['--model', 'ap7900'],
      ['--community-ro', 'a b'], ['--community-ro', 'private'], ['--v3-user', 'admin'],
      ['--v3-user', 'admin', '--v3-auth-password', 'short', '--v3-priv-password', 'long-enough'],
      ['--power-command', 'relative/path'], ['--unknown'], ['stray']]) {
      const r = spawnSync(PDUSIM, args, { encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 2, `haven-pdusim ${args.join(' ')} must exit 2`);
      assert.match(r.stderr, /^haven-pdusim: /, `haven-pdusim ${args.join(' ')} says why`);
    }
  });
});
