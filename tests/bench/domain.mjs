#!/usr/bin/env node
// SPDX-License-Identifier: LGPL-2.1-or-later
// Domain figures, three lab nodes with real corosync (token 1000 ms):
// commit latency (submit on node1 → applied on all three: node1's reply and
// the commit events of nodes 2 and 3), throughput (one-row transactions,
// 64 in flight), and in the same run the bare CPG round trip between the
// same nodes (haven-bench-cpg), and the ratio.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, lab, waitFor } from '../system/lib/lab.mjs';
import { DomainClient, createCluster } from '../system/lib/domain.mjs';

const LATENCY_SAMPLES = Number(process.env.DOMAIN_BENCH_SAMPLES ?? 500);
const THROUGHPUT_TXS = Number(process.env.DOMAIN_BENCH_TXS ?? 5000);
const WINDOW = 64;

const emit = (bench, value, unit, goal) =>
  console.log(JSON.stringify({ bench, value: Number(value.toFixed(3)), unit, ...(goal !== undefined && { goal }) }));
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const log = (...a) => console.error('bench:', ...a);

function insert(i, prefix) {
  return { request: 'submit', actor: 'bench', ops: [{ op: 'insert', table: 'hosts', values: { name: `${prefix}${i}`, address: '198.18.9.1' } }] };
}

async function main() {
  lab('down');
  lab('up', '3');
  try {
    await waitFor('domaind up', async () => {
      try { await createCluster(3, waitFor); return true; } catch (e) { log(e.message); return false; }
    }, { timeoutMs: 120_000, intervalMs: 2000 });

    const writer = await DomainClient.connect(1);
    const watchers = await Promise.all([2, 3].map((n) => DomainClient.connect(n)));
    for (const w of watchers) await w.call({ request: 'subscribe', events: ['commit'] });

    // Latency, one at a time.
    const samples = [];
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const t0 = process.hrtime.bigint();
      const r = await writer.call(insert(i, 'lat-'));
      if (r.error) throw new Error(JSON.stringify(r.error));
      await Promise.all(watchers.map((w) => w.waitEvent((e) => e.version === r.version)));
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
      for (const w of watchers) w.events.length = 0;
    }
    const p50 = pct(samples, 0.5), p99 = pct(samples, 0.99);
    log(`commit latency p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`);

    // Throughput, WINDOW in flight, until node1 applied all of them.
    for (const w of watchers) await w.call({ request: 'subscribe', events: ['membership'] });
    const t0 = process.hrtime.bigint();
    let next = 0, done = 0;
    await new Promise((resolve, reject) => {
      const pump = () => {
        while (next < THROUGHPUT_TXS && next - done < WINDOW) {
          writer.call(insert(next++, 'tps-')).then((r) => {
            if (r.error) return reject(new Error(JSON.stringify(r.error)));
            if (++done === THROUGHPUT_TXS) resolve();
            else pump();
          }, reject);
        }
      };
      pump();
    });
    const tps = THROUGHPUT_TXS / (Number(process.hrtime.bigint() - t0) / 1e9);
    log(`throughput ${tps.toFixed(0)} tx/s`);
    writer.close();
    for (const w of watchers) w.close();

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
