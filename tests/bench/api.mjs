#!/usr/bin/env node
// SPDX-License-Identifier: LGPL-2.1-or-later
// The API's figures, three lab nodes with 500 VMs in the domain: wrk from
// the host against node1's haven-httpd (plain HTTP, a session cookie) for
// GET /api/v1/dashboard, and in the same run against a bare libmicrohttpd
// server (haven-bench-api-bare: one thread, one prepared response of the
// dashboard's size, the limit) started inside node1's namespace, so both
// are reached the same way. Then haven-httpd's resident memory
// (/proc/PID/status VmRSS of node1's haven-httpd). Five JSON lines:
// api.dashboard_rps, api.bare_rps, api.dashboard_vs_bare_ratio,
// api.dashboard_p99_ms, api.httpd_rss_kib.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LAB, ROOT, lab, status, waitFor } from '../system/lib/lab.mjs';
import { LAB_PASSWORD, createCluster, domainCall, insertOp } from '../system/lib/domain.mjs';

const VMS = Number(process.env.API_BENCH_VMS ?? 500);
const SECONDS = Number(process.env.API_BENCH_SECONDS ?? 10);
const THREADS = Number(process.env.API_BENCH_THREADS ?? 2);
const CONNECTIONS = Number(process.env.API_BENCH_CONNECTIONS ?? 16);
const NODE1 = '198.18.0.1';
const HTTPD = `http://${NODE1}:8001`;
const BARE_PORT = 8081;
const BARE = join(ROOT, 'build', 'bin', 'haven-bench-api-bare');

const emit = (bench, value, unit, goal) =>
  console.log(JSON.stringify({ bench, value: Number(value.toFixed(3)), unit, ...(goal !== undefined && { goal }) }));
const log = (...a) => console.error('bench:', ...a);

// wrk's requests per second and 99th percentile latency (ms).
function wrk(url, headers = []) {
  const args = [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency'];
  for (const h of headers) args.push('-H', h);
  args.push(url);
  const out = execFileSync('wrk', args, { encoding: 'utf8' });
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)[1]);
  const [, v, unit] = out.match(/^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m);
  const p99 = Number(v) * (unit === 'us' ? 1e-3 : unit === 's' ? 1e3 : 1);
  const errors = out.match(/Non-2xx or 3xx responses: (\d+)/);
  if (errors) throw new Error(`wrk ${url}: ${errors[1]} error answers\n${out}`);
  return { rps, p99 };
}

async function login() {
  const r = await fetch(`${HTTPD}/api/v1/session`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'admin', password: LAB_PASSWORD }),
  });
  if (r.status !== 200) throw new Error(`login: ${r.status} ${await r.text()}`);
  return r.headers.get('set-cookie').split(';')[0];
}

// node1's haven-httpd: its host PID from the lab's process list.
function httpdPid() {
  const n = status().nodes.find((x) => x.index === 1);
  const p = n.processes.find((x) => x.comm === 'haven-httpd');
  if (!p) throw new Error('no haven-httpd on node1 (is it in tests/lab/services.json?)');
  return p.pid;
}

async function main() {
  let bare;
  lab('down');
  lab('up', '3');
  try {
    await createCluster(3, waitFor);
    // 500 VMs (HA on, so the HA tile counts them), one transaction.
    const ops = [];
    for (let i = 1; i <= VMS; i++) {
      ops.push(insertOp('vms', { name: `vm${i}`, memory_mib: 64, ha: 'on', description: `bench VM ${i}` }));
    }
    const r = await domainCall(1, { request: 'submit', ops, actor: 'bench' });
    if (r.error) throw new Error(JSON.stringify(r.error));
    await waitFor('node1 serves the API', async () => {
      try {
        return (await fetch(`${HTTPD}/api/v1/status`)).status === 401;
      } catch {
        return false;
      }
    }, { timeoutMs: 30_000, intervalMs: 200 });
    const cookie = await login();
    const get = () => fetch(`${HTTPD}/api/v1/dashboard`, { headers: { Cookie: cookie } });
    // Every node's sample in: the steady state (rebuilds only as samples
    // and events come, every 2 s per node).
    const body = await waitFor('a full dashboard', async () => {
      const d = await (await get()).json();
      return d.vms.configured === VMS && d.nodes.every((n) => n.mem_total_mib > 0) && d;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    const size = Buffer.byteLength(JSON.stringify(body));
    log(`dashboard: ${size} bytes, ${body.vms.configured} VMs, ${body.nodes.length} nodes`);

    bare = spawn(LAB, ['exec', '1', BARE, '--listen', NODE1, '--port', String(BARE_PORT),
      '--size', String(size), '--lifetime', String(4 * SECONDS + 60)], { stdio: 'ignore', detached: true });
    await waitFor('the bare server', async () => {
      try {
        return (await fetch(`http://${NODE1}:${BARE_PORT}/`)).status === 200;
      } catch {
        return false;
      }
    }, { timeoutMs: 10_000, intervalMs: 100 });

    // Warm both up, then measure them back to back.
    wrk(`${HTTPD}/api/v1/dashboard`, [`Cookie: ${cookie}`]);
    const dash = wrk(`${HTTPD}/api/v1/dashboard`, [`Cookie: ${cookie}`]);
    const limit = wrk(`http://${NODE1}:${BARE_PORT}/`);
    log(`dashboard ${dash.rps.toFixed(0)} req/s (p99 ${dash.p99.toFixed(2)} ms), bare ${limit.rps.toFixed(0)} req/s (p99 ${limit.p99.toFixed(2)} ms)`);

    const rss = Number(readFileSync(`/proc/${httpdPid()}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m)[1]);
    emit('api.dashboard_rps', dash.rps, 'req/s');
    emit('api.bare_rps', limit.rps, 'req/s');
    emit('api.dashboard_vs_bare_ratio', dash.rps / limit.rps, 'x', 0.7);
    emit('api.dashboard_p99_ms', dash.p99, 'ms', 5);
    emit('api.httpd_rss_kib', rss, 'KiB', 10 * 1024);
  } finally {
    if (bare?.pid) {
      try {
        process.kill(-bare.pid, 'SIGTERM'); // nsenter and the server inside
      } catch {
        // gone already
      }
    }
    lab('down');
  }
}

main().catch((e) => {
  console.error('bench: api:', e);
  process.exit(1);
});
