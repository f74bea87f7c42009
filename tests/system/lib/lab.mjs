// SPDX-License-Identifier: LGPL-2.1-or-later
// Helpers for system tests: drive tests/lab/haven-lab and wait for
// conditions. Every multi-node test imports this instead of shelling out on
// its own.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const LAB = join(ROOT, 'tests', 'lab', 'haven-lab');

// Runs `haven-lab ARGS...`; returns stdout, throws with stderr on failure.
export function lab(...args) {
  const r = spawnSync(LAB, args, { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) {
    throw new Error(`haven-lab ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  }
  return r.stdout;
}

// Like lab() but returns {status, stdout, stderr} instead of throwing.
export function labTry(...args) {
  const r = spawnSync(LAB, args, { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function labExec(node, ...cmd) {
  return lab('exec', String(node), ...cmd);
}

export function status() {
  return JSON.parse(lab('status', '--json'));
}

export const LAB_DIR = process.env.HAVEN_LAB_DIR ?? '/var/tmp/haven-lab';

// The host PID of a node's PID 1 straight from the lab's record (cheap: no
// /proc scan), or null when the node is off.
export function initPid(node) {
  try {
    const pid = Number(readFileSync(`${LAB_DIR}/nodes/node${node}/init.pid`, 'utf8').split(' ')[0]);
    return existsSync(`/proc/${pid}`) ? pid : null;
  } catch {
    return null;
  }
}

export function nodeStatus(node) {
  return status().nodes.find((n) => n.index === node);
}

// Polls fn() until it returns a truthy value; returns that value. Throws
// with the last value or error after timeoutMs.
export async function waitFor(what, fn, { timeoutMs = 30_000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// corosync's view from inside a node: {quorate, members: [nodeid...]}, or
// null when corosync does not answer there.
export function quorum(node) {
  const r = labTry('exec', String(node), 'corosync-quorumtool', '-s');
  // corosync-quorumtool exits 2 when not quorate but still prints the state.
  if (!r.stdout.includes('Quorate:')) return null;
  const quorate = /^Quorate:\s+Yes/m.test(r.stdout);
  const members = [];
  const table = r.stdout.split('Membership information')[1] ?? '';
  for (const line of table.split('\n')) {
    const m = line.match(/^\s*(\d+)\s+\d+\s+\S+/);
    if (m) members.push(Number(m[1]));
  }
  return { quorate, members: members.sort((a, b) => a - b) };
}

// Everything the lab could leave behind: its namespaces, links and mounts
// (by their names), and the given processes (host PIDs, e.g. every process
// status() listed before `down`).
export function leftovers(pids = []) {
  const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n').filter((l) => l.startsWith('hvl-'));
  const links = execFileSync('ip', ['-br', 'link'], { encoding: 'utf8' })
    .split('\n').filter((l) => l.startsWith('hvl-'));
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n').filter((l) => l.includes('hvl-') || l.includes(LAB_DIR));
  const processes = pids.filter((p) => processAlive(p));
  return { netns, links, mounts, processes };
}

// Host PIDs of every process of every node, and of the lab's power strip
// simulator, from `haven-lab status`.
export function labProcesses() {
  const s = status();
  const pids = s.nodes.flatMap((n) => n.processes.map((p) => p.pid));
  if (s.pdu?.pid) pids.push(s.pdu.pid);
  return pids;
}

export const NOTHING_LEFT = { netns: [], links: [], mounts: [], processes: [] };

export function processAlive(pid) {
  return existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
}
