// SPDX-License-Identifier: LGPL-2.1-or-later
// Helpers for the lab's VM tests: the test guest on the cluster share
// (tests/lab/guest-image: boots in a fraction of a second, idles in hlt,
// powers itself off on the ACPI power button or on any key), VMs created
// through haven-domaind, what every node's libvirtd runs, and the safety
// watcher that proves no VM ever runs on two nodes at once.
// Must not: change a libvirt domain except through guestShutdown (a key
// press, as a user at the console would), or decide anything Haven's
// daemons decide; a test asks Haven and then looks.
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LAB, LAB_DIR, ROOT, initPid, waitFor } from './lab.mjs';
import { domainCall, insertOp } from './domain.mjs';

export const GUEST_IMAGE_TOOL = join(ROOT, 'tests', 'lab', 'guest-image');
// The cluster share: one host directory every node mounts at SHARED_NODE.
export const SHARED_NODE = '/srv/haven/shared';
export const sharedHost = () => join(LAB_DIR, 'shared');
// The guest's size (tests/lab/guest-image writes 1 MiB).
export const GUEST_IMAGE_MIB = 1;
// The interconnect: node I is 198.18.0.I (docs/lab.md).
export const nodeAddress = (node) => `198.18.0.${node}`;

// ==== The guest image ====

// A path on the share as the host sees it (the share's directory under
// $HAVEN_LAB_DIR). Throws for a path outside SHARED_NODE.
export function hostPath(nodePath) {
  if ((nodePath !== SHARED_NODE && !nodePath.startsWith(`${SHARED_NODE}/`)) || nodePath.split('/').includes('..')) {
    throw new Error(`${nodePath} is not on the cluster share (${SHARED_NODE})`);
  }
  return join(sharedHost(), nodePath.slice(SHARED_NODE.length));
}

// Builds the test guest at nodePath on the share (default
// /srv/haven/shared/haven-guest.img) unless it is there already, and
// returns nodePath, the path the nodes see. Built once per lab: `haven-lab
// up` starts with an empty share. The tool writes a temporary file and
// renames it, so nobody ever reads half an image. Throws when the lab is
// down (no share).
export function guestImage(nodePath = `${SHARED_NODE}/haven-guest.img`) {
  const file = hostPath(nodePath);
  if (!existsSync(sharedHost())) throw new Error(`the lab is down: no cluster share in ${LAB_DIR}`);
  if (existsSync(file)) return nodePath;
  mkdirSync(join(file, '..'), { recursive: true });
  buildImage(file);
  return nodePath;
}

// tests/lab/guest-image FILE (a few milliseconds).
function buildImage(file) {
  const r = spawnSync(GUEST_IMAGE_TOOL, [file], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) {
    throw new Error(`${GUEST_IMAGE_TOOL} ${file} failed (${r.status ?? r.signal}): ${r.stderr ?? r.error}`);
  }
}

// ==== VMs in the domain ====

async function submit(node, ops, actor) {
  const r = await domainCall(node, { request: 'submit', ops, actor });
  if (r.error) throw new Error(`submit on node${node}: ${JSON.stringify(r.error)}`);
  return r;
}

async function rows(node, table, where) {
  const r = await domainCall(node, { request: 'query', table, ...(where ? { where } : {}) });
  if (r.error) throw new Error(`query ${table} on node${node}: ${JSON.stringify(r.error)}`);
  return r.rows;
}

// Creates VM name with its own copy of the test guest: a `shared` disk row
// (name "NAME-disk", 1 MiB, path /srv/haven/shared/vms/NAME.img), the vms
// row and the vm_disks row (virtio, boot order 1), in one transaction
// through node's haven-domaind (applied at once, not staged). The VM is
// not started (desired_state stays "stopped" unless values says otherwise;
// with desired_state "running" vmd may start it at once, so the image is
// in place before the rows are submitted).
// Options (node ids are corosync node ids: nodeI is I):
//   memory (MiB, default 32), vcpus (1), ha ('off' | 'on' | 'sticky'),
//   preferred (node id), priority (0..1000), sticky (node id: sets ha
//   'sticky' unless ha is given), restartMax, restartWindowS, relocateMax,
//   description, bus ('virtio'), values (more vms columns), node (the node
//   to submit through, default 1), actor ('test').
// Returns {id, diskId, name, disk, path (as nodes see it), hostPath}.
// Throws when a VM of that name exists (before touching any file: its
// image may be in use), or with domaind's error (the copy is then
// removed again).
export async function createVm(name, opts = {}) {
  const {
    memory = 32, vcpus = 1, ha, preferred, priority, sticky, restartMax, restartWindowS,
    relocateMax, description, bus = 'virtio', values = {}, node = 1, actor = 'test',
  } = opts;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,57}$/.test(name)) {
    throw new Error(`VM name "${name}": 1 to 58 of [A-Za-z0-9._-] (the disk is "NAME-disk")`);
  }
  const path = `${SHARED_NODE}/vms/${name}.img`;
  const file = hostPath(path);
  const vm = { name, memory_mib: memory, vcpus, ...values };
  if (ha !== undefined) vm.ha = ha;
  if (sticky !== undefined) {
    vm.sticky_node_id = sticky;
    if (ha === undefined) vm.ha = 'sticky';
  }
  if (preferred !== undefined) vm.preferred_node_id = preferred;
  if (priority !== undefined) vm.priority = priority;
  if (restartMax !== undefined) vm.restart_max = restartMax;
  if (restartWindowS !== undefined) vm.restart_window_s = restartWindowS;
  if (relocateMax !== undefined) vm.relocate_max = relocateMax;
  if (description !== undefined) vm.description = description;

  // The image of an existing VM (which may run) is never overwritten. The
  // copy is renamed into place: a node never reads half of it.
  if (await vmRow(name, node)) throw new Error(`VM "${name}" exists already`);
  const master = hostPath(guestImage());
  mkdirSync(join(file, '..'), { recursive: true });
  const tmp = `${file}.tmp.${process.pid}`;
  copyFileSync(master, tmp);
  renameSync(tmp, file);
  let r;
  try {
    r = await submit(node, [
      insertOp('disks', { name: `${name}-disk`, kind: 'shared', size_mib: GUEST_IMAGE_MIB, path }),
      insertOp('vms', vm),
      insertOp('vm_disks', { vm_id: { ref: 1 }, disk_id: { ref: 0 }, bus, boot_order: 1 }),
    ], actor);
  } catch (e) {
    rmSync(file, { force: true });
    throw e;
  }
  return {
    id: r.results[1].id, diskId: r.results[0].id, name, disk: `${name}-disk`, path, hostPath: file,
  };
}

// Deletes VM name (its vms row, with its attachments) and the disks it
// used, in one transaction through node, then their image files on the
// share. For a test's cleanup: the VM should be stopped first.
export async function removeVm(name, { node = 1, actor = 'test' } = {}) {
  const [vm] = await rows(node, 'vms', { name });
  if (!vm) return;
  const attached = await rows(node, 'vm_disks', { vm_id: vm.id });
  const disks = [];
  for (const a of attached) disks.push(...await rows(node, 'disks', { id: a.disk_id }));
  await submit(node, [
    { op: 'delete', table: 'vms', id: vm.id },
    ...disks.map((d) => ({ op: 'delete', table: 'disks', id: d.id })),
  ], actor);
  for (const d of disks) {
    if (d.path?.startsWith(`${SHARED_NODE}/`)) rmSync(hostPath(d.path), { force: true });
  }
}

// The vms row of name as node sees it, or undefined.
export async function vmRow(name, node = 1) {
  return (await rows(node, 'vms', { name }))[0];
}

// Asks vmd for something (docs: vm_commands): inserts {vm_id, command,
// target_node_id} through node and returns the command's id. vm is a name
// or a vms id; command start | shutdown | reboot | reset | poweroff |
// migrate | release; target (a node id) for migrate.
export async function vmCommand(vm, command, { target, node = 1, actor = 'test' } = {}) {
  const vmId = typeof vm === 'number' ? vm : (await vmRow(vm, node))?.id;
  if (!vmId) throw new Error(`no VM "${vm}"`);
  const values = { vm_id: vmId, command };
  if (target !== undefined) values.target_node_id = target;
  const r = await submit(node, [insertOp('vm_commands', values)], actor);
  return r.results[0].id;
}

// Waits until command id is done or failed and returns its row (state,
// result, ...). Throws after timeoutMs.
export async function waitCommand(id, { node = 1, timeoutMs = 60_000 } = {}) {
  return waitFor(`VM command ${id} finished`, async () => {
    const [row] = await rows(node, 'vm_commands', { id });
    return row && (row.state === 'done' || row.state === 'failed') && row;
  }, { timeoutMs, intervalMs: 200 });
}

// The status map's VM entries (key "vm/NAME", published by the node where
// the VM is) as node reads them: [{node, name, value}].
export async function vmEntries(node = 1) {
  const r = await domainCall(node, { request: 'status-read', prefix: 'vm/' });
  if (r.error) throw new Error(`status-read on node${node}: ${JSON.stringify(r.error)}`);
  return r.entries.map((e) => ({ node: e.node, name: e.key.slice(3), value: e.value }));
}

// ==== What the nodes' libvirtd run ====

// How the host reaches a node's libvirtd. 'tcp' (the default): straight
// from the host's network namespace over the interconnect, to the TCP
// listener each node's libvirtd has for live migration
// (qemu+tcp://198.18.0.I/system, no authentication in the lab; a partition
// never cuts the host off). 'exec': `haven-lab exec I virsh -c
// qemu:///system` (the node's unix socket, one bash more per call).
// HAVEN_LAB_VIRSH=exec changes the default.
export const VIRSH_VIA = process.env.HAVEN_LAB_VIRSH === 'exec' ? 'exec' : 'tcp';

// Runs `virsh ARGS...` against node's libvirtd; resolves with its stdout,
// rejects with its error text, or after timeoutMs (virsh is then killed:
// libvirt's client has no timeout of its own, and a call to a node that
// lost power mid-call or a busy libvirtd can block). uri (node => URI)
// replaces the lab's address, for a libvirtd outside the lab.
export function virsh(node, args, { timeoutMs = 5000, via = VIRSH_VIA, uri } = {}) {
  let file = 'virsh';
  let argv;
  if (uri) argv = ['-q', '-c', uri(node), ...args];
  else if (via === 'exec') {
    file = LAB;
    argv = ['exec', String(node), 'virsh', '-q', '-c', 'qemu:///system', ...args];
  } else argv = ['-q', '-c', `qemu+tcp://${nodeAddress(node)}/system`, ...args];
  return new Promise((resolve, reject) => {
    execFile(file, argv, {
      encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', env: { ...process.env, LC_ALL: 'C' },
    }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const why = err.killed ? `no answer in ${timeoutMs} ms` : (stderr.trim() || err.message);
      reject(new Error(`virsh ${args.join(' ')} on node${node}: ${why}`));
    });
  });
}

// The domains node's libvirtd runs right now (state running: a migration's
// incoming copy is paused until the source stops, so it is not listed):
// [{name, uuid}].
export async function runningOn(node, opts = {}) {
  const out = await virsh(node, ['list', '--state-running', '--name', '--uuid'], opts);
  const domains = [];
  for (const line of out.split('\n')) {
    const m = line.trim().match(/^([0-9a-f-]{36})\s+(\S+)$/);
    if (m) domains.push({ uuid: m[1], name: m[2] });
  }
  return domains;
}

// The lab's nodes: 1..nodes.count (none when the lab is down).
export function labNodes() {
  let n = 0;
  try {
    n = Number(readFileSync(join(LAB_DIR, 'nodes.count'), 'utf8').trim()) || 0;
  } catch {
    // the lab is down
  }
  return Array.from({ length: n }, (_, i) => i + 1);
}

const poweredOn = (node) => initPid(node) !== null;

// Asks every lab node's libvirtd, at once, which domains run. Powered-off
// nodes are not asked (they run nothing: a power cut kills every process
// of the node, QEMU included). Never hangs: each call has timeoutMs.
// Resolves with {vms: {NAME: [node, ...]}, nodes: {I: {power: 'on'|'off',
// running: [NAME...], error: string|null}}}; a node whose libvirtd did not
// answer has an error and counts as running nothing. Options: nodes (the
// nodes to ask, default every lab node), power (node => bool, default: its
// PID 1 exists), query ((node, opts) => Promise of [{name, uuid}], default
// runningOn), and virsh()'s timeoutMs, via, uri.
export async function runningEverywhere(opts = {}) {
  const { nodes = labNodes(), power = poweredOn, query = runningOn } = opts;
  const result = { vms: {}, nodes: {} };
  await Promise.all(nodes.map(async (node) => {
    const entry = { power: power(node) ? 'on' : 'off', running: [], error: null };
    result.nodes[node] = entry;
    if (entry.power === 'off') return;
    try {
      entry.running = (await query(node, opts)).map((d) => d.name);
    } catch (e) {
      entry.error = e.message;
    }
  }));
  for (const node of nodes) {
    for (const name of result.nodes[node].running) (result.vms[name] ??= []).push(node);
  }
  for (const list of Object.values(result.vms)) list.sort((a, b) => a - b);
  return result;
}

// The nodes where VM name runs now (sorted; [] when nowhere).
export async function whereRunning(name, opts = {}) {
  return (await runningEverywhere(opts)).vms[name] ?? [];
}

// The guest shuts itself down: a key press on its console (`virsh send-key
// VM KEY_P` on node), which the test guest answers with an ACPI power-off.
// libvirt reports the stop as a guest shutdown that nobody asked for.
export async function guestShutdown(node, vm, opts = {}) {
  await virsh(node, ['send-key', vm, 'KEY_P'], opts);
}

// ==== The safety watcher ====

// Starts watching every lab node's libvirtd (runningEverywhere every
// intervalMs, rounds never overlap) for a VM running on two nodes at once.
// The nodes of one round are asked concurrently, so one round is not one
// instant: a live migration's switch-over (source paused, destination
// resumed, tens to hundreds of ms) can fall between two answers and look
// like two running copies. So a name seen running on several nodes in a
// round is checked again at once, one node after the other, twice over
// (A, B, A, B, each call ending before the next starts): a pair counts as
// a violation only when one of them answered "running" both before and
// after the other answered "running" (A B A or B A B), i.e. the second
// ran while the first still did. A sighting that does not survive that
// check is kept in suspects. An error of a round (a libvirtd that does not
// answer) is counted and the watch goes on.
// Returns {stop, stats}: stop() ends the watch (after the round under way)
// and resolves with the violations, one per VM and set of nodes:
// [{name, nodes: [..], first, last (ISO times), rounds}]; stats() gives
// {rounds, errors, lastError, suspects: [{name, nodes, at}]}. Options:
// intervalMs (250), timeoutMs (2000 here: a node that loses power in the
// middle of a call holds its round up to that long), and
// runningEverywhere()'s nodes, power, query, via, uri.
export function safetyWatcher(options = {}) {
  const opts = { timeoutMs: 2000, ...options };
  const { intervalMs = 250, query = runningOn } = opts;
  const violations = new Map(); // "name nodes" -> violation
  const suspects = [];
  const stats = { rounds: 0, errors: 0, lastError: null };
  let stopping = false;
  let wake = null;

  const record = (name, nodes) => {
    const key = `${name} ${nodes.join(',')}`;
    const now = new Date().toISOString();
    const v = violations.get(key);
    if (v) {
      v.last = now;
      v.rounds += 1;
    } else violations.set(key, { name, nodes, first: now, last: now, rounds: 1 });
  };

  // Is name running on node, by a fresh question? null: no answer.
  const runsOn = async (node, name) => {
    try {
      return (await query(node, opts)).some((d) => d.name === name);
    } catch (e) {
      stats.errors += 1;
      stats.lastError = e.message;
      return null;
    }
  };

  const confirm = async (name, nodes) => {
    const seen = nodes.map(() => []); // per node: answers of pass 1 and 2
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < nodes.length; i++) seen[i].push(await runsOn(nodes[i], name));
    }
    // Pair (i, j), i asked before j in each pass: i@1 < j@1 < i@2 < j@2.
    const guilty = new Set();
    const yes = (k, pass) => seen[k][pass] === true;
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) {
        if ((yes(i, 0) && yes(j, 0) && yes(i, 1)) || (yes(j, 0) && yes(i, 1) && yes(j, 1))) {
          guilty.add(nodes[i]);
          guilty.add(nodes[j]);
        }
      }
    }
    return [...guilty].sort((a, b) => a - b);
  };

  const round = async () => {
    const r = await runningEverywhere(opts);
    stats.rounds += 1;
    for (const n of Object.values(r.nodes)) {
      if (n.error) {
        stats.errors += 1;
        stats.lastError = n.error;
      }
    }
    for (const [name, nodes] of Object.entries(r.vms)) {
      if (nodes.length < 2) continue;
      const guilty = await confirm(name, nodes);
      if (guilty.length >= 2) record(name, guilty);
      else suspects.push({ name, nodes, at: new Date().toISOString() });
    }
  };

  const loop = (async () => {
    while (!stopping) {
      try {
        await round();
      } catch (e) {
        stats.errors += 1;
        stats.lastError = e.message;
      }
      if (stopping) break;
      await new Promise((resolve) => {
        const t = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = null;
    }
  })();

  return {
    async stop() {
      stopping = true;
      if (wake) wake();
      await loop;
      return [...violations.values()];
    },
    stats() {
      return { ...stats, suspects: suspects.slice() };
    },
  };
}

// ==== Waiting (lab.mjs has waitFor) ====

// Waits until VM name runs on exactly the nodes in `nodes` (e.g. [2], or []
// for nowhere) and returns runningEverywhere()'s answer.
export async function waitRunning(name, nodes, { timeoutMs = 60_000, ...opts } = {}) {
  const want = [...nodes].sort((a, b) => a - b).join(',');
  return waitFor(`VM "${name}" running on [${want}]`, async () => {
    const r = await runningEverywhere(opts);
    return (r.vms[name] ?? []).join(',') === want && r;
  }, { timeoutMs, intervalMs: 250 });
}
