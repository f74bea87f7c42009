#!/usr/bin/env node
// SPDX-License-Identifier: LGPL-2.1-or-later
// Fencing figures, three lab nodes: a fence request (submitted on node1 for
// node3) → claimed by node1's haven-fenced → outlet switched off and read
// back off → outcome recorded, seen by a client on node1. Once with the
// native APC driver and once with Debian's fence_apc_snmp through the
// fence-agent path (its default options), against the same simulator in the
// same run: a second haven-pdusim on 198.18.0.254:1161, switching delay 0,
// not wired to any node (so node3 keeps running and every sample fences the
// same node). Between samples the outlet is switched on again with snmpset.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, lab, waitFor } from '../system/lib/lab.mjs';
import { DomainClient, createCluster, domainCall, insertOp } from '../system/lib/domain.mjs';

const NATIVE_SAMPLES = Number(process.env.FENCE_BENCH_NATIVE ?? 30);
const AGENT_SAMPLES = Number(process.env.FENCE_BENCH_AGENT ?? 8);
const PORT = 1161;
const OUTLET3_COMMAND = '.1.3.6.1.4.1.318.1.1.12.3.3.1.1.4.3';

const emit = (bench, value, unit, goal) =>
  console.log(JSON.stringify({ bench, value: Number(value.toFixed(3)), unit, ...(goal !== undefined && { goal }) }));
const log = (...a) => console.error('bench:', ...a);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function submit(ops) {
  const r = await domainCall(1, { request: 'submit', ops, actor: 'bench' });
  if (r.error) throw new Error(JSON.stringify(r.error));
  return r;
}

function outletOn() {
  execFileSync('snmpset', ['-v2c', '-c', 'private', '-r', '1', '-t', '1', `198.18.0.254:${PORT}`,
    OUTLET3_COMMAND, 'i', '1'], { stdio: 'ignore' });
}

// One sample: submit → the request row done, as node1's client sees it.
async function sample(client) {
  const t0 = process.hrtime.bigint();
  const r = await client.call({
    request: 'submit', actor: 'bench',
    ops: [insertOp('fence_requests', { node_id: 3, reason: 'bench' })],
  });
  if (r.error) throw new Error(JSON.stringify(r.error));
  const id = r.results[0].id;
  for (;;) {
    await client.waitEvent((e) => e.event === 'commit' && e.tables.includes('fence_requests'), 60_000);
    const q = await client.call({ request: 'query', table: 'fence_requests', where: { id } });
    const row = q.rows[0];
    if (row.state === 'done') return { ms: Number(process.hrtime.bigint() - t0) / 1e6, row };
    if (row.state === 'failed') throw new Error(`fence failed: ${row.result}`);
  }
}

async function series(client, n, what) {
  const xs = [];
  for (let i = 0; i < n; i++) {
    const { ms, row } = await sample(client);
    xs.push(ms);
    if (i === 0) log(`${what}: ${row.result}`);
    outletOn();
    await new Promise((r) => setTimeout(r, 50));
  }
  log(`${what}: median ${median(xs).toFixed(1)} ms, min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)} (${n} samples)`);
  return median(xs);
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'haven-bench-pdu-'));
  let pdu;
  lab('down');
  lab('up', '3');
  try {
    await createCluster(3, waitFor);
    pdu = spawn(join(ROOT, 'build', 'bin', 'haven-pdusim'),
      ['--listen', `198.18.0.254:${PORT}`, '--state-dir', dir, '--delay-ms', '0'], { stdio: 'ignore' });
    await waitFor('bench PDU answers', () => {
      try { outletOn(); return true; } catch { return false; }
    });
    const r = await submit([
      insertOp('fence_devices', {
        name: 'bench-native', type: 'apc-snmp', address: '198.18.0.254',
        parameters: { port: PORT, snmp_version: '2c', community: 'private', poll_ms: 10 },
      }),
      insertOp('fence_devices', {
        name: 'bench-agent', type: 'fence-agent', address: '198.18.0.254',
        parameters: { agent: 'fence_apc_snmp', ipport: PORT, snmp_version: '2c', community: 'private' },
      }),
      insertOp('fence_outlets', { node_id: 3, device_id: { ref: 0 }, outlet: '3' }),
    ]);
    const [nativeId, agentId, outletId] = r.results.map((x) => x.id);

    const client = await DomainClient.connect(1);
    const sub = await client.call({ request: 'subscribe', events: ['commit'] });
    if (sub.error) throw new Error(JSON.stringify(sub.error));
    // Every fencer has read the configuration (node1 claims).
    await new Promise((res) => setTimeout(res, 2000));
    await sample(client); // warm-up: page cache, first exec
    outletOn();
    const native = await series(client, NATIVE_SAMPLES, 'native');

    const [o] = (await domainCall(1, { request: 'query', table: 'fence_outlets', where: { id: outletId } })).rows;
    await submit([{ op: 'update', table: 'fence_outlets', id: outletId, expect_version: o.version, values: { device_id: agentId } }]);
    await new Promise((res) => setTimeout(res, 1000));
    const agent = await series(client, AGENT_SAMPLES, 'fence_apc_snmp');
    client.close();
    log(`devices ${nativeId}, ${agentId}`);

    emit('fence.native_off_ms', native, 'ms', 100);
    emit('fence.agent_off_ms', agent, 'ms');
    emit('fence.agent_vs_native_ratio', agent / native, 'x', 5);
  } finally {
    if (pdu) pdu.kill('SIGTERM');
    lab('down');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error('bench: fence:', e);
  process.exit(1);
});
