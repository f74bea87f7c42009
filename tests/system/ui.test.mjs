// SPDX-License-Identifier: LGPL-2.1-or-later
// The web UI in a real browser: playwright-core driving Debian's chromium
// (headless) against node1's haven-httpd in a three-node lab cluster with
// real domaind, fenced, vmd, libvirtd and QEMU. What an administrator
// sees: the login page, every main page (a screenshot of each, in English
// and German, saved under tests/system/artifacts/ui/), the dashboard
// noticing a node's power-off within seconds, a live migration started
// from the VM table's context menu moving the VM, and the German UI
// without an English string left. The page must not log an error to its
// console (noVNC's "secure context" warning on plain HTTP, and the
// browser's note of the session check's expected 401, excepted).
// The console follows a live migration (the page connects again).
// Staged changes: the storage wizard stages one, the top bar counts it,
// Discard (confirmed) drops it, Activate applies the next one and opens
// the job page with the activation's log.
// Keyboard only: login, the skip link, the focus order of the top bar
// and navigation, a VM's Actions menu (arrows, Escape), a dialog that
// keeps and returns the focus, a wizard closed with Escape. A tablet (768
// × 1024, touch): every page without sideways scrolling (screenshots
// PAGE-tablet.png), the navigation behind the menu button, a VM's actions
// by touch, a wizard that fits the screen.
// Bad inputs tried: a wrong password at the login (the page says so and
// stays there).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { NOTHING_LEFT, ROOT, initPid, lab, labProcesses, leftovers, waitFor } from './lib/lab.mjs';
import {
  LAB_PASSWORD, createCluster as createClusterWith, domainCall, insertOp,
} from './lib/domain.mjs';
import { createVm, safetyWatcher, vmCommand, whereRunning } from './lib/vm.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = join(HERE, 'artifacts', 'ui');
const URL = 'http://198.18.0.1:8001/';
const CHROMIUM = process.env.HAVEN_CHROMIUM ?? '/usr/bin/chromium';
const en = JSON.parse(readFileSync(join(ROOT, 'webui', 'src', 'locales', 'en.json'), 'utf8'));
const de = JSON.parse(readFileSync(join(ROOT, 'webui', 'src', 'locales', 'de.json'), 'utf8'));
const identical = JSON.parse(readFileSync(join(ROOT, 'webui', 'src', 'locales', 'identical.json'), 'utf8'));
// Route → page (webui/src/router.js): the dashboard is "#/".
const PAGES = ['dashboard', 'nodes', 'vms', 'storage', 'networks', 'fencing', 'infrastructure', 'jobs', 'audit', 'alerts', 'changes'];
const route = (p) => (p === 'dashboard' ? '#/' : `#/${p}`);

// The dashboard's node rows that show "online" (en) / "Online" (de).
const onlineRows = (page) => page.locator('main table tbody tr', { has: page.getByText(en['node.online'], { exact: true }) });
// The language switch, whatever the language.
const languageSelect = (page) => page.locator('label.language select');

async function submit(ops) {
  const r = await domainCall(1, { request: 'submit', ops, actor: 'test' });
  if (r.error) throw new Error(JSON.stringify(r.error));
  return r;
}

async function rows(table, where) {
  const r = await domainCall(1, { request: 'query', table, ...(where ? { where } : {}) });
  if (r.error) throw new Error(JSON.stringify(r.error));
  return r.rows;
}

describe('web UI (chromium against a three-node lab cluster)', () => {
  let browser;
  let page;
  let watch;
  const consoleErrors = [];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    lab('up', '3');
    await createClusterWith(3, waitFor);
    await submit([
      insertOp('fence_devices', {
        name: 'pdu1', type: 'apc-snmp', address: '198.18.0.254',
        parameters: { snmp_version: '2c', community: 'private', outlets: 8 },
      }),
      ...[1, 2, 3].map((n) => insertOp('fence_outlets', { node_id: n, device_id: { ref: 0 }, outlet: String(n) })),
    ]);
    const nodes = await rows('nodes');
    await submit(nodes.map((n) => ({ op: 'update', table: 'nodes', id: n.id, values: { state: 'active' } })));
    // No preferred node: a manual migration is not undone by failback.
    await createVm('web1', { memory: 64, ha: 'on', values: { desired_state: 'running' } });
    await waitFor('web1 running', async () => (await whereRunning('web1')).length === 1,
      { timeoutMs: 60_000, intervalMs: 250 });
    watch = safetyWatcher();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
    // The browser logs every non-2xx answer as a console error; the
    // session check before login is a 401 the app expects.
    page.on('console', (m) => {
      if (m.type() === 'error' && !/secure context/i.test(m.text()) &&
        !/status of 401/.test(m.text())) consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('response', (r) => {
      if (r.status() >= 400 && r.status() !== 401) consoleErrors.push(`${r.status()} ${r.url()}`);
    });
  });

  after(async () => {
    await browser?.close();
    const violations = watch ? await watch.stop() : [];
    const pids = labProcesses();
    lab('down');
    assert.deepEqual(leftovers(pids), NOTHING_LEFT, 'down leaves nothing behind');
    assert.deepEqual(violations, [], 'no VM ever ran on two nodes');
  });

  test('login_refuses_a_wrong_password_then_opens_the_dashboard', async () => {
    await page.goto(URL);
    await page.getByLabel(en['login.name']).fill('admin');
    await page.getByLabel(en['login.password']).fill('not-the-password');
    await page.getByRole('button', { name: en['login.submit'] }).click();
    await page.getByText(en['login.failed']).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'login-failed.png') });
    await page.getByLabel(en['login.password']).fill(LAB_PASSWORD);
    await page.getByRole('button', { name: en['login.submit'] }).click();
    await page.getByRole('heading', { name: en['dash.nodes'] }).waitFor({ timeout: 10_000 });
    // Three nodes, all online.
    await waitFor('three nodes online on the dashboard', async () =>
      (await onlineRows(page).count()) === 3,
    { timeoutMs: 15_000, intervalMs: 200 });
  });

  test('every_main_page_renders_in_english_and_german', async () => {
    for (const lang of ['en', 'de']) {
      await languageSelect(page).selectOption(lang);
      for (const p of PAGES) {
        await page.goto(`${URL}${route(p)}`);
        await page.locator('main h1').first().waitFor({ timeout: 10_000 });
        await page.waitForLoadState('networkidle').catch(() => {});
        assert.notEqual(await page.locator('main h1').first().innerText(),
          lang === 'en' ? en['notfound.title'] : de['notfound.title'], `${p} is a page`);
        await page.screenshot({ path: join(ARTIFACTS, `${p}-${lang}.png`), fullPage: true });
      }
    }
    assert.deepEqual(consoleErrors, []);
  });

  test('the_german_ui_has_no_english_string_left', async () => {
    await languageSelect(page).selectOption('de');
    // Every English text of more than one word that German does not share
    // on purpose: none may appear on a German page.
    const english = Object.entries(en)
      .filter(([k, v]) => !identical.includes(k) && !v.includes('{') && /\s/.test(v.trim()))
      .map(([, v]) => v);
    const found = [];
    for (const p of PAGES) {
      await page.goto(`${URL}${route(p)}`);
      await page.locator('main h1').first().waitFor({ timeout: 10_000 });
      await page.waitForLoadState('networkidle').catch(() => {});
      const text = await page.locator('body').innerText();
      assert.ok(text.includes(de['nav.nodes']) && text.includes(de['nav.dashboard']), `${p} is in German`);
      for (const s of english) if (text.includes(s)) found.push(`${p}: "${s}"`);
    }
    assert.deepEqual(found, []);
    await languageSelect(page).selectOption('en');
  });

  test('live_migrate_from_the_context_menu_moves_the_vm', async () => {
    await page.goto(`${URL}#/vms`);
    await languageSelect(page).selectOption('en');
    const row = page.getByRole('row', { name: /web1/ });
    // The cells: state, node, HA, preferred node, ...
    const nodeCell = row.locator('td').nth(1);
    const [from] = await whereRunning('web1');
    const to = from === 3 ? 2 : 3;
    await waitFor(`web1 on node${from} in the table`, async () => (await nodeCell.innerText()).trim() === `node${from}`,
      { timeoutMs: 15_000, intervalMs: 200 });
    await row.click({ button: 'right' });
    await page.getByRole('menuitem', { name: en['vms.migrate-menu'] }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel(en['col.node']).selectOption(`node${to}`);
    await page.screenshot({ path: join(ARTIFACTS, 'vms-migrate-dialog.png') });
    await dialog.getByRole('button', { name: en['vm.action.migrate'] }).click();
    await waitFor(`web1 on node${to} in the table`, async () => (await nodeCell.innerText()).trim() === `node${to}`,
      { timeoutMs: 60_000, intervalMs: 200 });
    assert.deepEqual(await whereRunning('web1'), [to]);
  });

  test('the_console_page_shows_the_vms_screen_through_novnc', async () => {
    // web1 runs on another node than node1, whose httpd serves the page:
    // noVNC → node1's console WebSocket → that node's httpd → QEMU's VNC.
    const [vm] = await rows('vms', { name: 'web1' });
    await page.goto(`${URL}#/vms/${vm.id}/console`);
    await page.getByText(en['console.state.connected']).waitFor({ timeout: 30_000 });
    const canvas = page.locator('main canvas').first();
    await canvas.waitFor({ timeout: 10_000 });
    const box = await canvas.boundingBox();
    assert.ok(box && box.width > 100 && box.height > 100, `the guest's screen is drawn: ${JSON.stringify(box)}`);
    await page.screenshot({ path: join(ARTIFACTS, 'console-en.png'), fullPage: true });
    // A live migration ends QEMU's VNC server on the old node: the page
    // says so and connects again, now to the new node.
    const [from] = await whereRunning('web1');
    const to = from === 2 ? 3 : 2;
    await vmCommand('web1', 'migrate', { target: to, node: 1 });
    await waitFor('the console noticed the move', async () => {
      const text = await page.locator('main').innerText();
      return [en['console.state.moved'], en['console.state.reconnecting'], en['console.state.disconnected']]
        .some((x) => text.includes(x));
    }, { timeoutMs: 60_000, intervalMs: 50 });
    await page.getByText(en['console.state.connected']).waitFor({ timeout: 30_000 });
    assert.deepEqual(await whereRunning('web1'), [to]);
    const again = await page.locator('main canvas').first().boundingBox();
    assert.ok(again && again.width > 100, 'the screen is drawn again');
    await page.screenshot({ path: join(ARTIFACTS, 'console-after-migration.png'), fullPage: true });
    assert.deepEqual(consoleErrors, []);
  });

  test('keyboard_only_login_skip_link_focus_order_and_a_vm_menu', async () => {
    // No mouse: every step below is a key press (playwright's keyboard).
    const kb = await browser.newPage({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
    kb.on('pageerror', (e) => consoleErrors.push(String(e)));
    // What has the focus, by its accessible name (label, aria-label, text).
    const focused = () => kb.evaluate(() => {
      const e = document.activeElement;
      if (!e || e === document.body) return null;
      const label = e.getAttribute('aria-label') || (e.labels && e.labels[0] && e.labels[0].innerText) ||
        e.innerText || e.id || e.tagName;
      return label.replace(/[▾☰]/g, '').trim();
    });
    const tabTo = async (pred, what, { max = 80, key = 'Tab' } = {}) => {
      for (let i = 0; i < max; i++) {
        await kb.keyboard.press(key);
        if (await pred()) return;
      }
      throw new Error(`${key} never reached ${what}`);
    };
    await kb.goto(URL);
    await kb.getByLabel(en['login.name']).waitFor();
    await tabTo(async () => (await focused()) === en['login.name'], 'the name field');
    await kb.keyboard.type('admin');
    await kb.keyboard.press('Tab');
    assert.equal(await focused(), en['login.password']);
    await kb.keyboard.type(LAB_PASSWORD);
    await kb.keyboard.press('Enter');
    await kb.getByRole('heading', { name: en['dash.nodes'] }).waitFor({ timeout: 10_000 });
    // The new page's heading has the focus.
    assert.equal(await kb.evaluate(() => document.activeElement.id), 'page-title');
    // Focus order, walked backwards to the first stop (the skip link):
    // the top bar, then the navigation in its visual order.
    const back = [];
    await tabTo(async () => {
      back.push(await focused());
      return back[back.length - 1] === en['shell.skip'];
    }, 'the skip link', { max: 40, key: 'Shift+Tab' });
    const order = back.reverse();
    const nav = ['nav.dashboard', 'nav.nodes', 'nav.vms', 'nav.storage', 'nav.networks', 'nav.fencing',
      'nav.infrastructure', 'nav.jobs', 'nav.audit'].map((k) => en[k]);
    const at = nav.map((n) => order.indexOf(n));
    assert.ok(at.every((x, i) => x >= 0 && (i === 0 || x === at[i - 1] + 1)), `navigation in order: ${JSON.stringify(order)}`);
    assert.ok(order.indexOf(en['shell.logout']) > 0 && order.indexOf(en['shell.logout']) < at[0],
      `the skip link, the top bar, then the navigation: ${JSON.stringify(order)}`);
    const skip = await kb.getByText(en['shell.skip']).boundingBox();
    assert.ok(skip && skip.y >= 0 && skip.height > 0, 'the focused skip link is on screen');
    // Enter on the skip link moves the focus to the page itself.
    await kb.keyboard.press('Enter');
    assert.equal(await kb.evaluate(() => document.activeElement.id), 'main');
    // To the VMs page through the navigation.
    await tabTo(async () => (await focused()) === en['nav.vms'], 'the VMs link', { key: 'Shift+Tab' });
    await kb.keyboard.press('Enter');
    await kb.waitForURL(/#\/vms$/);
    await kb.getByRole('row', { name: /web1/ }).waitFor({ timeout: 10_000 });
    // web1's Actions menu: open, walk with the arrows, choose.
    await tabTo(() => kb.evaluate(() => {
      const e = document.activeElement;
      return e.classList.contains('menu-button') && !!e.closest('tr') && e.closest('tr').innerText.includes('web1');
    }), 'web1\'s Actions button');
    await kb.keyboard.press('Enter');
    await kb.getByRole('menu').waitFor();
    assert.equal(await kb.evaluate(() => document.activeElement.getAttribute('role')), 'menuitem', 'the menu has the focus');
    await kb.keyboard.press('Escape');
    assert.equal(await kb.evaluate(() => document.activeElement.classList.contains('menu-button')), true,
      'Escape gives the focus back to the button');
    await kb.keyboard.press('ArrowDown');
    await kb.getByRole('menu').waitFor();
    for (let i = 0; i < 20 && (await focused()) !== en['vms.prefer-menu']; i++) await kb.keyboard.press('ArrowDown');
    assert.equal(await focused(), en['vms.prefer-menu']);
    await kb.keyboard.press('Enter');
    const dialog = kb.getByRole('dialog');
    await dialog.waitFor();
    assert.equal(await kb.evaluate(() => !!document.activeElement.closest('dialog')), true, 'the dialog has the focus');
    const [where] = await whereRunning('web1');
    const want = `node${where}`;
    for (let i = 0; i < 10 && (await dialog.getByLabel(en['col.node']).inputValue()) !== want; i++)
      await kb.keyboard.press('ArrowDown');
    await kb.screenshot({ path: join(ARTIFACTS, 'keyboard-prefer-dialog.png') });
    await tabTo(async () => (await focused()) === en['common.save'], 'Save', { max: 10 });
    await kb.keyboard.press('Enter');
    await dialog.waitFor({ state: 'detached', timeout: 10_000 });
    const [vm] = await rows('vms', { name: 'web1' });
    assert.equal(vm.preferred_node_id, where, 'the preference was saved through the keyboard');
    assert.equal(await kb.evaluate(() => document.activeElement.classList.contains('menu-button')), true,
      'the focus is back on the Actions button');
    await submit([{ op: 'update', table: 'vms', id: vm.id, values: { preferred_node_id: null } }]);
    // The New VM wizard: Escape closes it (nothing typed), focus returns.
    await tabTo(async () => (await focused()) === en['wizard.vm.open'], 'New VM…', { key: 'Shift+Tab' });
    await kb.keyboard.press('Enter');
    // The dialog shows "Loading" first; once the wizard is there its
    // Name field has the focus.
    await kb.getByRole('dialog').getByLabel(en['col.name'], { exact: true }).waitFor();
    await waitFor('the focus on the wizard\'s Name field', async () => (await focused()) === en['col.name'],
      { timeoutMs: 2_000, intervalMs: 20 });
    await kb.keyboard.press('Escape');
    await kb.getByRole('dialog').waitFor({ state: 'detached' });
    assert.equal(await focused(), en['wizard.vm.open']);
    await kb.close();
    assert.deepEqual(consoleErrors, []);
  });

  test('a_tablet_sees_every_page_without_sideways_scrolling', async () => {
    const context = await browser.newContext({
      viewport: { width: 768, height: 1024 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'en-US',
    });
    const tab = await context.newPage();
    tab.on('pageerror', (e) => consoleErrors.push(String(e)));
    await tab.goto(URL);
    await tab.getByLabel(en['login.name']).fill('admin');
    await tab.getByLabel(en['login.password']).fill(LAB_PASSWORD);
    await tab.getByRole('button', { name: en['login.submit'] }).tap();
    await tab.getByRole('heading', { name: en['dash.nodes'] }).waitFor({ timeout: 10_000 });
    const overflow = [];
    for (const p of PAGES) {
      await tab.goto(`${URL}${route(p)}`);
      await tab.locator('main h1').first().waitFor({ timeout: 10_000 });
      await tab.waitForLoadState('networkidle').catch(() => {});
      const w = await tab.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      if (w[0] > w[1]) overflow.push(`${p}: ${w[0]} > ${w[1]}`);
      await tab.screenshot({ path: join(ARTIFACTS, `${p}-tablet.png`), fullPage: true });
    }
    assert.deepEqual(overflow, [], 'no page is wider than the tablet');
    // The navigation folds into the menu button.
    const nav = tab.getByRole('navigation', { name: en['shell.navigation'] });
    assert.equal(await nav.isVisible(), false);
    await tab.getByRole('button', { name: en['shell.menu'] }).tap();
    await nav.getByRole('link', { name: en['nav.vms'] }).tap();
    await tab.waitForURL(/#\/vms$/);
    assert.equal(await nav.isVisible(), false, 'the menu folds away after a choice');
    // A VM's actions without a right click: the Actions button, the menu
    // inside the screen.
    await tab.getByRole('row', { name: /web1/ }).getByRole('button', { name: en['col.actions'] }).tap();
    const box = await tab.getByRole('menu').boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 768 && box.y + box.height <= 1024, `menu on screen: ${JSON.stringify(box)}`);
    await tab.screenshot({ path: join(ARTIFACTS, 'vms-menu-tablet.png') });
    await tab.keyboard.press('Escape');
    // A wizard fits the screen.
    await tab.getByRole('button', { name: en['wizard.vm.open'] }).tap();
    await tab.getByRole('dialog').getByLabel(en['col.name'], { exact: true }).waitFor();
    const dialog = await tab.getByRole('dialog').boundingBox();
    assert.ok(dialog && dialog.x >= 0 && dialog.x + dialog.width <= 768, `the wizard fits: ${JSON.stringify(dialog)}`);
    await tab.screenshot({ path: join(ARTIFACTS, 'vm-wizard-tablet.png') });
    await context.close();
    assert.deepEqual(consoleErrors, []);
  });

  test('staged_changes_are_discarded_or_activated_with_the_log_streaming', async () => {
    // The storage wizard stages by default: the top bar counts the change.
    const stage = async (name) => {
      await page.goto(`${URL}#/storage`);
      await page.getByRole('button', { name: en['wizard.storage.open'] }).click();
      const wizard = page.getByRole('dialog');
      await wizard.getByText(/Step 1 of 4/).waitFor({ timeout: 15_000 });
      await wizard.getByRole('button', { name: en['wizard.next'] }).click();
      await wizard.getByLabel(en['col.name'], { exact: true }).fill(name);
      await wizard.getByLabel(en['col.size'], { exact: true }).fill('1');
      await wizard.getByRole('button', { name: en['wizard.next'] }).click();
      await wizard.getByRole('button', { name: en['wizard.next'] }).click();
      assert.equal(await wizard.getByLabel(en['wizard.when.staged']).isChecked(), true, 'staged is the default');
      await wizard.getByRole('button', { name: en['wizard.finish'] }).click();
      await wizard.getByText(en['wizard.done-staged']).waitFor({ timeout: 15_000 });
      await wizard.getByRole('button', { name: en['common.close'] }).last().click();
    };
    const bar = page.getByRole('group', { name: en['changes.group'] });
    const count = (n) => waitFor(`the top bar counts ${n}`, async () =>
      (await bar.locator('a.pending-count').innerText()).trim() ===
        en[n === 1 ? 'changes.count.one' : 'changes.count.other'].replace('{count}', String(n)),
    { timeoutMs: 10_000, intervalMs: 100 });
    await stage('staged1');
    await count(1);
    assert.equal((await rows('disks', { name: 'staged1' })).length, 0, 'staged, not applied');
    // Discard, confirmed: gone, nothing applied.
    await bar.getByRole('button', { name: en['changes.discard'] }).click();
    await page.getByRole('dialog').getByRole('button', { name: en['changes.discard'] }).click();
    await count(0);
    assert.equal((await rows('disks', { name: 'staged1' })).length, 0);
    // Staged again, activated: the job page with the activation's log.
    await stage('staged2');
    await bar.getByRole('button', { name: en['changes.activate'] }).click();
    await page.waitForURL(/#\/jobs\/\d+$/, { timeout: 10_000 });
    const log = page.getByRole('log');
    await log.locator('.log-line').first().waitFor({ timeout: 30_000 });
    await page.locator('main').getByText(en['job.state.done'], { exact: true }).first().waitFor({ timeout: 30_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'activation-job.png'), fullPage: true });
    assert.ok(await log.locator('.log-line').count() >= 1);
    const [disk] = await rows('disks', { name: 'staged2' });
    assert.equal(disk.kind, 'esan');
    assert.equal(disk.size_mib, 1024);
    await count(0);
    assert.deepEqual(consoleErrors, []);
  });

  test('the_dashboard_shows_a_power_cut_within_seconds', async () => {
    await page.goto(`${URL}#/`);
    await page.reload();
    await page.getByRole('heading', { name: en['dash.nodes'] }).waitFor({ timeout: 10_000 })
      .catch(async (e) => {
        await page.screenshot({ path: join(ARTIFACTS, 'failed-dashboard.png'), fullPage: true });
        throw e;
      });
    await waitFor('three online', async () => (await onlineRows(page).count()) === 3,
      { timeoutMs: 15_000, intervalMs: 100 });
    const t0 = Date.now();
    lab('power', '3', 'off');
    await page.locator('main table tbody tr', { hasText: 'node3' })
      .getByText(en['node.offline'], { exact: true }).waitFor({ timeout: 15_000 });
    const ms = Date.now() - t0;
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-node3-off.png'), fullPage: true });
    // Corosync notices in about 2.2 s and the page follows at once; the
    // figure is make bench's (ui.node_loss_visible_ms), not a test bound.
    console.error(`ui: the dashboard showed node3 offline ${ms} ms after the power cut`);
    assert.equal(initPid(3), null);
    assert.deepEqual(consoleErrors, []);
  });
});
