#!/usr/bin/env node
// SPDX-License-Identifier: LGPL-2.1-or-later
// Failover, three lab nodes (token 1000 ms), four HA VMs of 64 MiB (the
// lab's test guest) running on node3: node3's power is cut (the lab kills
// its PID 1, and with it QEMU) → every one of the four runs on a survivor.
// Split: detection (power cut → the manager asks for node3's fence: the
// membership loss plus one decision), fencing (request → verified off, by
// haven-fenced and the lab's power strip), restart (fence verified → the
// last of the four reported running on a survivor and its placement
// written). The end is the placement row's updated_at: the manager writes
// `running` when the agent reports it runs. Each trial brings node3 back
// and waits until the four have migrated back to it (they prefer node3).
// Median of FAILOVER_TRIALS (default 3) trials.
import { readFileSync } from 'node:fs';
import { LAB_DIR, lab, waitFor } from '../system/lib/lab.mjs';
import { createCluster, domainCall, insertOp } from '../system/lib/domain.mjs';
import { createVm, whereRunning } from '../system/lib/vm.mjs';

const TRIALS = Number(process.env.FAILOVER_TRIALS ?? 3);
const VMS = ['f1', 'f2', 'f3', 'f4'];

const emit = (bench, value, unit, goal) =>
  console.log(JSON.stringify({ bench, value: Number(value.toFixed(3)), unit, ...(goal !== undefined && { goal }) }));
const log = (...a) => console.error('bench:', ...a);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function submit(ops) {
  const r = await domainCall(1, { request: 'submit', ops, actor: 'bench' });
  if (r.error) throw new Error(JSON.stringify(r.error));
  return r;
}

async function rows(table, where) {
  const r = await domainCall(1, { request: 'query', table, ...(where ? { where } : {}) });
  if (r.error) throw new Error(JSON.stringify(r.error));
  return r.rows;
}

async function allOn(node, ids) {
  const ps = await rows('vm_placements');
  for (const id of ids) {
    const p = ps.find((x) => x.vm_id === id);
    if (!p || p.state !== 'running' || p.node_id !== node) return false;
  }
  for (const name of VMS) if ((await whereRunning(name)).join() !== String(node)) return false;
  return true;
}

async function trial(ids) {
  const lastFence = (await rows('fence_requests', { node_id: 3 })).at(-1)?.id ?? 0;
  lab('power', '3', 'off');
  const cut = Number(BigInt(readFileSync(`${LAB_DIR}/nodes/node3/power-cut`, 'utf8').trim()) / 1000n);
  const fence = await waitFor('node3 fenced', async () => {
    const f = (await rows('fence_requests', { node_id: 3 })).at(-1);
    return f && f.id > lastFence && f.state === 'done' && f;
  }, { timeoutMs: 60_000, intervalMs: 50 });
  const ps = await waitFor('the four running on survivors', async () => {
    const all = (await rows('vm_placements')).filter((p) => ids.includes(p.vm_id));
    return all.length === ids.length &&
      all.every((p) => p.state === 'running' && p.node_id !== 3) && all;
  }, { timeoutMs: 60_000, intervalMs: 50 });
  const end = Math.max(...ps.map((p) => p.updated_at));
  const t = {
    total: (end - cut) / 1e6,
    detect: (fence.requested_at - cut) / 1e6,
    fence: (fence.finished_at - fence.requested_at) / 1e6,
    restart: (end - fence.finished_at) / 1e6,
  };
  log(`trial: total ${t.total.toFixed(2)} s = detect ${t.detect.toFixed(2)} + fence ${t.fence.toFixed(2)} + restart ${t.restart.toFixed(2)}`);
  // The fence switched outlet 3 off: switching it on boots node3 (the
  // next trial's fence then really switches it).
  lab('pdu', 'set', '3', 'on');
  await waitFor('the four back on node3', () => allOn(3, ids), { timeoutMs: 120_000, intervalMs: 500 });
  return t;
}

async function main() {
  lab('up', '3');
  try {
    await createCluster(3, waitFor);
    await submit([
      insertOp('fence_devices', {
        name: 'pdu1', type: 'apc-snmp', address: '198.18.0.254',
        parameters: { snmp_version: '2c', community: 'private', outlets: 8 },
      }),
      ...[1, 2, 3].map((n) => insertOp('fence_outlets', { node_id: n, device_id: { ref: 0 }, outlet: String(n) })),
    ]);
    const nodes = await rows('nodes');
    await submit(nodes.map((n) => ({ op: 'update', table: 'nodes', id: n.id, values: { state: 'active' } })));
    const ids = [];
    for (const name of VMS) {
      ids.push((await createVm(name, {
        memory: 64, ha: 'on', preferred: 3, values: { desired_state: 'running' },
      })).id);
    }
    await waitFor('the four running on node3', () => allOn(3, ids), { timeoutMs: 60_000, intervalMs: 250 });
    const trials = [];
    for (let i = 0; i < TRIALS; i++) trials.push(await trial(ids));
    const pick = (k) => median(trials.map((t) => t[k]));
    emit('ha.failover_s', pick('total'), 's', 5);
    emit('ha.failover_detect_s', pick('detect'), 's');
    emit('ha.failover_fence_s', pick('fence'), 's');
    emit('ha.failover_restart_s', pick('restart'), 's');
  } finally {
    lab('down');
  }
}

main().catch((e) => {
  console.error(e);
  try { lab('down'); } catch { /* already down */ }
  process.exit(1);
});
