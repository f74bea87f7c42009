// SPDX-License-Identifier: LGPL-2.1-or-later
// Helpers for tests that use a power strip: the lab's own (haven-pdusim at
// 198.18.0.254:161, outlet I powers nodeI; see docs/lab.md) through
// `haven-lab pdu`, net-snmp's command line tools and Debian's
// fence_apc_snmp, and private simulators on 127.0.0.1 that a test starts and
// stops itself.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, lab, labTry, waitFor } from './lab.mjs';

export const PDUSIM = process.env.HAVEN_LAB_PDUSIM ?? join(ROOT, 'build', 'bin', 'haven-pdusim');
export const FENCE_APC_SNMP = '/usr/sbin/fence_apc_snmp';

// PowerNet-MIB and MIB-II OIDs the simulator serves (numeric: no MIB files).
const APC = '.1.3.6.1.4.1.318.1.1';
export const OID = {
  apc: '.1.3.6.1.4.1.318',
  system: '.1.3.6.1.2.1.1',
  sysObjectID: '.1.3.6.1.2.1.1.2.0',
  numOutlets: `${APC}.12.1.8.0`,
  devCommand: `${APC}.12.3.1.1.0`,
  outletCommand: (n) => `${APC}.12.3.3.1.1.4.${n}`,
  outletConfigName: (n) => `${APC}.12.3.4.1.1.2.${n}`,
  outletStatusName: (n) => `${APC}.12.3.5.1.1.2.${n}`,
  outletState: (n) => `${APC}.12.3.5.1.1.4.${n}`,
  outletPending: (n) => `${APC}.12.3.5.1.1.5.${n}`,
  sPDUOutletCtl: (n) => `${APC}.4.4.2.1.3.${n}`,
  sPDUOutletCtlName: (n) => `${APC}.4.4.2.1.4.${n}`,
};
// Values: rPDUOutletControlOutletCommand / sPDUOutletCtl / state.
export const ON = 1;
export const OFF = 2;
export const REBOOT = 3;
export const DEV_ALL_ON = 2;
export const DEV_ALL_OFF = 3;
export const DEV_ALL_REBOOT = 4;

// ==== The lab's power strip ====

// `haven-lab pdu status --json`: {running, pid, address, port, delay_ms,
// community_ro, community_rw, v3_user, v3_auth_password, v3_priv_password,
// outlets: [{outlet, name, on}]}. Outlets come from the state file, so they
// are known while the simulator is stopped too.
export function pduStatus() {
  return JSON.parse(lab('pdu', 'status', '--json'));
}

// {outlet, name, on} of one outlet.
export function pduOutlet(outlet) {
  return pduStatus().outlets.find((o) => o.outlet === outlet);
}

// Switches an outlet through SNMP (immediately unless the strip was started
// with a delay). Does not wait for the node: its power command runs
// asynchronously (waitFor the node's initPid).
export function pduSet(outlet, on) {
  lab('pdu', 'set', String(outlet), on ? 'on' : 'off');
}

// The strip stops answering (outlets and nodes keep their power).
export function pduStop() {
  lab('pdu', 'stop');
}

// Starts the strip again with its outlet states; restarts it if it runs
// with another delay.
export function pduStart({ delayMs = 0 } = {}) {
  lab('pdu', 'start', '--delay-ms', String(delayMs));
}

// "HOST:PORT" of the lab's strip.
export function pduTarget(s = pduStatus()) {
  return `${s.address}:${s.port}`;
}

// fence_apc_snmp's credential options for the lab's strip: 'v1' (its
// default version, community private), 'v2c', 'v3' (SHA + AES authPriv),
// or 'wrong' (a community the strip does not know).
export function fenceCredentials(kind, s = pduStatus()) {
  switch (kind) {
    case 'v1': return ['-c', s.community_rw];
    case 'v2c': return ['-d', '2c', '-c', s.community_rw];
    case 'v3': return ['-d', '3', '-l', s.v3_user, '-p', s.v3_auth_password, '-b', 'SHA',
      '-B', 'AES', '-P', s.v3_priv_password];
    case 'wrong': return ['-c', 'not-a-community'];
    default: throw new Error(`no credentials "${kind}"`);
  }
}

// Runs fence_apc_snmp inside a lab node against the lab's strip:
// {status, stdout, stderr}. args: e.g. ['-n', '3', '-o', 'off'].
export function fenceApcSnmp(node, kind, args, s = pduStatus()) {
  return labTry('exec', String(node), FENCE_APC_SNMP, '-a', s.address, '-u', String(s.port),
    ...fenceCredentials(kind, s), ...args);
}

// ==== net-snmp's tools (run on the host) ====

// Runs snmpget/snmpset/snmpwalk with numeric output (-On -Oq: "OID value"
// lines) and no MIB files: {status, stdout, stderr}. A community the agent
// does not know times out after timeout * (retries + 1) seconds.
export function snmp(tool, target, args, { version = '2c', community = 'public', timeout = 1, retries = 0 } = {}) {
  const r = spawnSync(tool, ['-m', '', '-On', '-Oq', '-v', version, '-c', community,
    '-t', String(timeout), '-r', String(retries), target, ...args],
  { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

// snmpget of one OID → its value (a number for INTEGER), or throws.
export function snmpGet(target, oid, options) {
  const r = snmp('snmpget', target, [oid], options);
  if (r.status !== 0) throw new Error(`snmpget ${oid} failed: ${r.stderr}${r.stdout}`);
  return parseValue(r.stdout.trim().split(/\s+/).slice(1).join(' '));
}

// snmpset of one INTEGER (or, with type 's', a string); returns the result.
export function snmpSet(target, oid, value, options, type = 'i') {
  return snmp('snmpset', target, [oid, type, String(value)], { community: 'private', ...options });
}

// snmpwalk → [[oid, value]...] in the order the agent returned them.
export function snmpWalk(target, oid, options) {
  const r = snmp('snmpwalk', target, [oid], options);
  if (r.status !== 0) throw new Error(`snmpwalk ${oid} failed: ${r.stderr}`);
  // v2c ends a walk past the agent's last object with endOfMibView.
  return r.stdout.split('\n').filter((l) => l.startsWith('.') && !l.includes('No more variables left'))
    .map((l) => {
      const [name, ...rest] = l.split(/\s+/);
      return [name, parseValue(rest.join(' '))];
    });
}

function parseValue(text) {
  if (/^-?\d+$/.test(text)) return Number(text);
  const quoted = text.match(/^"(.*)"$/);
  return quoted ? quoted[1] : text;
}

// ==== A private simulator ====

// Every private simulator still running (stop() removes it), and the
// temporary directories startPduSimulator() made.
const running = new Set();
const madeDirs = new Set();

// Stops every private simulator a test left running (say, after a failed
// assertion), then removes the temporary directories startPduSimulator()
// made: call it from after(), or node:test waits for them forever.
export async function stopPduSimulators() {
  await Promise.all([...running].map((sim) => sim.stop()));
  for (const d of madeDirs) rmSync(d, { recursive: true, force: true });
  madeDirs.clear();
}

// Starts haven-pdusim on 127.0.0.1 at a random free port with the given
// extra arguments (e.g. ['--model', 'masterswitch']), in dir or a fresh
// temporary directory (its log, PID file, and — with stateDir: true — state
// dir; stopPduSimulators() removes a directory made here).
// Waits until it listens. Returns {pid, port, target, dir, stateDir,
// logPath, log(), stop()}: stop() sends SIGTERM to exactly that PID and
// resolves with its exit code (signal name if killed); calling it again
// resolves the same.
export async function startPduSimulator(args = [], { stateDir = false, dir } = {}) {
  const base = dir ?? mkdtempSync(join(tmpdir(), 'haven-pdusim-'));
  if (!dir) madeDirs.add(base);
  const logPath = join(base, 'pdusim.log');
  const pidFile = join(base, 'pdusim.pid');
  const state = stateDir ? join(base, 'state') : null;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    rmSync(pidFile, { force: true });
    const child = spawn(PDUSIM, ['--listen', `127.0.0.1:${port}`, '--log', logPath,
      '--pid-file', pidFile, ...(state ? ['--state-dir', state] : []), ...args],
    { stdio: 'ignore' });
    let exit = null;
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      exit = code ?? signal;
      resolve(exit);
    }));
    await waitFor('the simulator listens or exits',
      () => exit !== null || (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== ''),
      { timeoutMs: 10_000, intervalMs: 20 });
    if (exit !== null) continue; // most likely the port was taken: another one
    const sim = {
      pid: child.pid,
      port,
      target: `127.0.0.1:${port}`,
      dir: base,
      stateDir: state,
      logPath,
      log: () => readFileSync(logPath, 'utf8'),
      stop: async () => {
        running.delete(sim);
        if (exit === null) process.kill(child.pid, 'SIGTERM');
        return exited;
      },
    };
    running.add(sim);
    return sim;
  }
  throw new Error(`haven-pdusim did not start: ${readFileSync(logPath, 'utf8')}`);
}

// fence_apc_snmp on the host against a private simulator: {status, stdout,
// stderr}.
export function fenceApcSnmpLocal(sim, args) {
  const r = spawnSync(FENCE_APC_SNMP, ['-a', '127.0.0.1', '-u', String(sim.port), ...args],
    { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
