#!/usr/bin/env node
// SPDX-License-Identifier: LGPL-2.1-or-later
// Domain figures, three lab nodes with real corosync (token 1000 ms):
// commit latency (submit on node1 → applied on all three: node1's reply and
// the commit events of nodes 2 and 3), throughput (one-row transactions,
// 64 in flight), both measured by haven-bench-domain (C), and in the same
// run the bare CPG round trip between the same nodes (haven-bench-cpg), and
// the ratio.
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, lab, waitFor } from '../system/lib/lab.mjs';
import { createCluster, socketPath } from '../system/lib/domain.mjs';

const LATENCY_SAMPLES = Number(process.env.DOMAIN_BENCH_SAMPLES ?? 500);
const THROUGHPUT_TXS = Number(process.env.DOMAIN_BENCH_TXS ?? 5000);
const WINDOW = 64;

const emit = (bench, value, unit, goal) =>
  console.log(JSON.stringify({ bench, value: Number(value.toFixed(3)), unit, ...(goal !== undefined && { goal }) }));
const log = (...a) => console.error('bench:', ...a);

async function main() {
  lab('down');
  lab('up', '3');
  try {
    await waitFor('domaind up', async () => {
      try { await createCluster(3, waitFor); return true; } catch (e) { log(e.message); return false; }
    }, { timeoutMs: 120_000, intervalMs: 2000 });

    // Measured by a C client (no garbage collector in the figures).
    const client = join(ROOT, 'build', 'bin', 'haven-bench-domain');
    const [w1, w2, w3] = [1, 2, 3].map(socketPath);
    const lat = JSON.parse(execFileSync(client, ['latency', String(LATENCY_SAMPLES), w1, w2, w3], { encoding: 'utf8' }));
    const p50 = lat.p50_ms, p99 = lat.p99_ms;
    log(`commit latency p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${lat.max_ms.toFixed(2)} ms`);
    const thr = JSON.parse(execFileSync(client, ['throughput', String(THROUGHPUT_TXS), String(WINDOW), w1], { encoding: 'utf8' }));
    const tps = thr.tps;
    log(`throughput ${tps.toFixed(0)} tx/s`);

    // The bare CPG round trip between the same nodes.
    const bin = join(ROOT, 'build', 'bin', 'haven-bench-cpg');
    const echoes = [2, 3].map((n) => spawn(join(ROOT, 'tests', 'lab', 'haven-lab'), ['exec', String(n), bin, 'echo'], { stdio: 'ignore' }));
    let cpg;
    try {
      const out = lab('exec', '1', bin, 'ping', '3', String(LATENCY_SAMPLES));
      cpg = JSON.parse(out);
    } finally {
      for (const e of echoes) e.kill('SIGTERM');
    }
    log(`bare CPG round trip p50 ${cpg.p50_ms} ms, p99 ${cpg.p99_ms} ms`);

    emit('domain.commit_p50_ms', p50, 'ms');
    emit('domain.commit_p99_ms', p99, 'ms', 10);
    emit('domain.commit_tps', tps, 'tx/s', 2000);
    emit('domain.cpg_rtt_p50_ms', cpg.p50_ms, 'ms');
    emit('domain.commit_vs_cpg_ratio', p50 / cpg.p50_ms, 'x', 3);
  } finally {
    lab('down');
  }
}

main().catch((e) => { console.error(e); lab('down'); process.exit(1); });
