#!/usr/bin/env node
// SPDX-License-Identifier: LGPL-2.1-or-later
// Live migration of an idle 64 MiB VM (the lab's test guest, QEMU under
// TCG) between two lab nodes, back and forth MIGRATE_SAMPLES times (default
// 6): `migrate` commands through the domain, carried out by haven-vmd
// (libvirt peer-to-peer over the interconnect). Figures, medians:
// - vm.migrate_total_ms: the migration as the source's agent measures it
//   (virsh migrate started → done), from the job it records;
// - vm.migrate_downtime_ms: the guest's pause at the switch-over, from the
//   source libvirtd's completed-job statistics (the same job line);
// - vm.migrate_command_ms: the command inserted → done, as an
//   administrator waits for it (decision, migration, report, decision).
import { lab, waitFor } from '../system/lib/lab.mjs';
import { createCluster, domainCall } from '../system/lib/domain.mjs';
import { createVm, vmCommand, waitCommand } from '../system/lib/vm.mjs';

const SAMPLES = Number(process.env.MIGRATE_SAMPLES ?? 6);

const emit = (bench, value, unit, goal) =>
  console.log(JSON.stringify({ bench, value: Number(value.toFixed(3)), unit, ...(goal !== undefined && { goal }) }));
const log = (...a) => console.error('bench:', ...a);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function rows(table, where) {
  const r = await domainCall(1, { request: 'query', table, ...(where ? { where } : {}) });
  if (r.error) throw new Error(JSON.stringify(r.error));
  return r.rows;
}

async function main() {
  lab('up', '3');
  try {
    await createCluster(3, waitFor);
    const nodes = await rows('nodes');
    const r = await domainCall(1, {
      request: 'submit', actor: 'bench',
      ops: nodes.map((n) => ({ op: 'update', table: 'nodes', id: n.id, values: { state: 'active' } })),
    });
    if (r.error) throw new Error(JSON.stringify(r.error));
    await createVm('mig', { memory: 64, ha: 'on', values: { desired_state: 'running' } });
    const [vm] = await rows('vms', { name: 'mig' });
    let p = await waitFor('mig running', async () => {
      const [x] = await rows('vm_placements', { vm_id: vm.id });
      return x?.state === 'running' && x;
    }, { timeoutMs: 60_000, intervalMs: 200 });
    // Let the guest settle into its idle loop.
    await new Promise((res) => setTimeout(res, 2000));
    const total = [], downtime = [], command = [];
    for (let i = 0; i < SAMPLES; i++) {
      const target = p.node_id === 1 ? 2 : 1;
      const jobsBefore = (await rows('job_log')).length;
      const t0 = Date.now();
      const id = await vmCommand('mig', 'migrate', { target });
      const c = await waitCommand(id, { timeoutMs: 120_000 });
      if (c.state !== 'done') throw new Error(`migration failed: ${c.result}`);
      command.push(Date.now() - t0);
      const line = await waitFor('the migration job', async () => {
        const l = (await rows('job_log')).slice(jobsBefore).find((j) => j.line.includes("vm 'mig': live migration"));
        return l?.line;
      }, { timeoutMs: 10_000, intervalMs: 100 });
      const m = line.match(/done in (\d+) ms, downtime (\d+) ms/);
      if (!m) throw new Error(`unexpected job line: ${line}`);
      total.push(Number(m[1]));
      downtime.push(Number(m[2]));
      log(`sample ${i + 1}: ${line}; command ${command.at(-1)} ms`);
      [p] = await rows('vm_placements', { vm_id: vm.id });
    }
    emit('vm.migrate_total_ms', median(total), 'ms');
    emit('vm.migrate_downtime_ms', median(downtime), 'ms', 300);
    emit('vm.migrate_command_ms', median(command), 'ms');
  } finally {
    lab('down');
  }
}

main().catch((e) => {
  console.error(e);
  try { lab('down'); } catch { /* already down */ }
  process.exit(1);
});
