#!/usr/bin/env node
// SPDX-License-Identifier: LGPL-2.1-or-later
// The web UI's figures in headless Chromium (Debian's, driven by
// playwright-core) against node1's haven-httpd in a three-node lab cluster:
// - ui.dashboard_interactive_ms: a cold load of the dashboard (a new
//   browser context: empty cache, a session cookie) → the node table shows
//   every node with its state and the main thread is free (a task queued
//   then runs), measured in the page from navigation start; median of
//   UI_BENCH_LOADS (10);
// - ui.node_loss_visible_ms: node3's power is cut; from the moment the
//   cluster notices (node1's haven-domaind sends its membership event,
//   received by a subscriber on node1's socket) to the dashboard showing
//   node3 offline (a MutationObserver in the page notes the time); median
//   of UI_BENCH_CUTS (3). Both times are the host's clock.
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { ROOT, lab, waitFor } from '../system/lib/lab.mjs';
import { DomainClient, LAB_PASSWORD, createCluster, domainCall, insertOp } from '../system/lib/domain.mjs';

const require = createRequire(join(ROOT, 'tests', 'system', 'package.json'));
const { chromium } = require('playwright-core');
const LOADS = Number(process.env.UI_BENCH_LOADS ?? 10);
const CUTS = Number(process.env.UI_BENCH_CUTS ?? 3);
const URL = 'http://198.18.0.1:8001/';

const emit = (bench, value, unit, goal) =>
  console.log(JSON.stringify({ bench, value: Number(value.toFixed(3)), unit, ...(goal !== undefined && { goal }) }));
const log = (...a) => console.error('bench:', ...a);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function submit(ops) {
  const r = await domainCall(1, { request: 'submit', ops, actor: 'bench' });
  if (r.error) throw new Error(JSON.stringify(r.error));
  return r;
}

async function sessionCookie() {
  const r = await fetch(`${URL}api/v1/session`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'admin', password: LAB_PASSWORD }),
  });
  if (r.status !== 200) throw new Error(`login: ${r.status}`);
  const [pair] = r.headers.get('set-cookie').split(';');
  const [name, value] = pair.split('=');
  return { name, value, domain: '198.18.0.1', path: '/' };
}

// The page is ready when the dashboard's node table lists every node with
// its online state, and a task queued then has run.
async function loadOnce(browser, cookie, nodes) {
  const context = await browser.newContext({ locale: 'en-US' });
  await context.addCookies([cookie]);
  const page = await context.newPage();
  await page.goto(`${URL}#/`, { waitUntil: "commit" });
  const ms = await page.evaluate((n) => new Promise((resolve, reject) => {
    const give_up = setTimeout(() => reject(new Error('the dashboard did not show the nodes in 20 s')), 20_000);
    const check = () => {
      const rows = [...document.querySelectorAll('main table tbody tr')]
        .filter((tr) => /Online|Offline/.test(tr.innerText));
      if (rows.length >= n) {
        clearTimeout(give_up);
        setTimeout(() => resolve(performance.now()), 0);
      }
      else requestAnimationFrame(check);
    };
    check();
  }), nodes);
  await context.close();
  return ms;
}

async function nodeLoss(browser, cookie) {
  const context = await browser.newContext({ locale: 'en-US' });
  await context.addCookies([cookie]);
  const page = await context.newPage();
  await page.goto(`${URL}#/`);
  await page.waitForFunction(() => [...document.querySelectorAll('main table tbody tr')]
    .filter((tr) => /Online/.test(tr.innerText)).length === 3, null, { timeout: 30_000 });
  await page.evaluate(() => {
    window.__offlineAt = 0;
    new MutationObserver(() => {
      if (!window.__offlineAt && [...document.querySelectorAll('main table tbody tr')]
        .some((tr) => /node3/.test(tr.innerText) && /Offline/.test(tr.innerText))) {
        window.__offlineAt = Date.now();
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  const domain = await DomainClient.connect(1);
  await domain.call({ request: 'subscribe', events: ['membership'] });
  const noticed = domain.waitEvent((e) => e.event === 'membership' && !e.members.includes(3), 30_000)
    .then(() => Date.now());
  lab('power', '3', 'off');
  const t1 = await noticed;
  const t2 = await waitFor('node3 offline on the dashboard', () => page.evaluate(() => window.__offlineAt),
    { timeoutMs: 30_000, intervalMs: 50 });
  domain.close();
  await context.close();
  lab('power', '3', 'on');
  await waitFor('node3 back', async () => {
    const s = await domainCall(1, { request: 'status' });
    return s.members.find((m) => m.id === 3)?.online && s.synced;
  }, { timeoutMs: 60_000, intervalMs: 500 });
  return t2 - t1;
}

async function main() {
  lab('up', '3');
  let browser;
  try {
    await createCluster(3, waitFor);
    await submit([insertOp('vms', { name: 'idle1', memory_mib: 64 })]);
    browser = await chromium.launch({ executablePath: process.env.HAVEN_CHROMIUM ?? '/usr/bin/chromium',
      args: ['--no-sandbox'] });
    const cookie = await sessionCookie();
    await loadOnce(browser, cookie, 3); // warm the server's dashboard cache
    const loads = [];
    for (let i = 0; i < LOADS; i++) loads.push(await loadOnce(browser, cookie, 3));
    log(`dashboard loads (ms): ${loads.map((x) => x.toFixed(0)).join(' ')}`);
    emit('ui.dashboard_interactive_ms', median(loads), 'ms', 1000);
    const cuts = [];
    for (let i = 0; i < CUTS; i++) {
      cuts.push(await nodeLoss(browser, cookie));
      log(`node loss visible ${cuts.at(-1)} ms after the cluster noticed`);
    }
    emit('ui.node_loss_visible_ms', median(cuts), 'ms', 1000);
  } finally {
    await browser?.close();
    lab('down');
  }
}

main().catch((e) => {
  console.error(e);
  try { lab('down'); } catch { /* already down */ }
  process.exit(1);
});
