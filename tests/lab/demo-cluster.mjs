#!/usr/bin/env node
// SPDX-License-Identifier: LGPL-2.1-or-later
// demo-cluster.mjs PASSWORD: turns the lab's three fresh nodes into a
// working cluster for a visitor (`make demo DEMO=cluster`): the cluster
// created on node1 with the administrator "admin" and PASSWORD, nodes 2
// and 3 joined, the lab's power strip as fencing device with one outlet
// per node, every node active, and two HA VMs (the lab's test guest on the
// cluster share) running. Everything goes through haven-domaind's socket,
// as the setup wizard's API calls do. Prints nothing but progress on
// stderr; exits non-zero with the reason when a step fails.
import { waitFor } from '../system/lib/lab.mjs';
import { converged, domainCall, insertOp } from '../system/lib/domain.mjs';
import { createVm, whereRunning } from '../system/lib/vm.mjs';

const password = process.argv[2];
if (!password || password.length < 8) {
  console.error('usage: demo-cluster.mjs PASSWORD (at least 8 characters)');
  process.exit(2);
}
const say = (s) => console.error(`demo: ${s}`);

async function call(node, req) {
  const r = await domainCall(node, req);
  if (r.error) throw new Error(`${req.request} on node${node}: ${r.error.message}`);
  return r;
}

async function main() {
  say('creating the cluster "demo" on node1');
  await call(1, { request: 'cluster-create', name: 'demo', admin: 'admin', password });
  for (const n of [2, 3]) {
    say(`node${n} joins`);
    await call(n, { request: 'cluster-join', address: '198.18.0.1', admin: 'admin', password });
  }
  await waitFor('all three nodes in sync', () => converged([1, 2, 3]), { timeoutMs: 90_000, intervalMs: 500 });
  say('the power strip as fencing device, outlet I for nodeI; every node active');
  const { rows: nodes } = await call(1, { request: 'query', table: 'nodes' });
  await call(1, {
    request: 'submit', actor: 'demo', ops: [
      insertOp('fence_devices', {
        name: 'pdu1', type: 'apc-snmp', address: '198.18.0.254',
        parameters: { snmp_version: '2c', community: 'private', outlets: 8 },
      }),
      ...[1, 2, 3].map((n) => insertOp('fence_outlets', { node_id: n, device_id: { ref: 0 }, outlet: String(n) })),
      ...nodes.map((n) => ({ op: 'update', table: 'nodes', id: n.id, values: { state: 'active' } })),
    ],
  });
  say('two HA VMs: web (prefers node2) and db (prefers node3)');
  await createVm('web', { memory: 64, ha: 'on', preferred: 2, values: { desired_state: 'running' } });
  await createVm('db', { memory: 64, ha: 'on', preferred: 3, priority: 800, values: { desired_state: 'running' } });
  await waitFor('both VMs running', async () =>
    (await whereRunning('web')).join() === '2' && (await whereRunning('db')).join() === '3',
  { timeoutMs: 90_000, intervalMs: 500 });
}

main().catch((e) => {
  console.error(`demo: ${e.message}`);
  process.exit(1);
});
