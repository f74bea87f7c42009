// SPDX-License-Identifier: LGPL-2.1-or-later
// From three fresh lab nodes to a running VM through the web UI's wizards
// only, in headless chromium (playwright-core, Debian's chromium): the
// cluster setup wizard creates the cluster on node1 with the lab's power
// strip as its fencing device (tested first), joins node2 and node3 (each
// with its own outlet on the same device), then the nodes are made active
// on the Nodes page and the New VM wizard creates a VM with a new disk on
// the cluster share and starts it (the node agent makes the disk's image).
// Every step is photographed under tests/system/artifacts/ui-wizards/.
// Then the cluster network wizard (its path check with a real ping, a
// switch for VM traffic on the lab's eth1, which every node's haven-vmd
// turns into a bridge with eth1 plugged in), the storage wizard (the eSAN
// pair, an eSAN disk, a disk on the share) and the New VM wizard with a
// NIC on that switch: started, its tap is a port of the switch's bridge.
// Bad inputs tried: a wrong administrator password when joining (the
// server's error lands at the password field, nothing joins), a VM name
// that is taken (the error lands at the name field); as typed: an MTU of
// 10000, a VLAN id of 5000, one eSAN node instead of two, a malformed MAC;
// and what only the server can know — another administrator takes the
// switch's name, the eSAN disk's name or the NIC's MAC while the wizard is
// open: each wizard, applying now, shows the server's refusal at that field
// on its step, and nothing of the batch is written (the whole batch is one
// transaction).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { NOTHING_LEFT, lab, labExec, labProcesses, leftovers, waitFor } from './lib/lab.mjs';
import { converged, domainCall, domainStatus, insertOp } from './lib/domain.mjs';
import { hostPath, safetyWatcher, whereRunning } from './lib/vm.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = join(HERE, 'artifacts', 'ui-wizards');
const CHROMIUM = process.env.HAVEN_CHROMIUM ?? '/usr/bin/chromium';
const PASSWORD = 'wizard-password-1';
const url = (node) => `http://198.18.0.${node}:8001/`;

describe('the setup and VM wizards (chromium, three fresh lab nodes)', () => {
  let browser;
  let watch;
  let shot = 0;
  const errors = [];

  const snap = (page, name) => page.screenshot({ path: join(ARTIFACTS, `${String(++shot).padStart(2, '0')}-${name}.png`), fullPage: true });

  async function newPage() {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
    page.on('pageerror', (e) => errors.push(String(e)));
    return page;
  }

  // `ip -d -o link show dev NAME` in a node ("" if it has no such link).
  const ipLink = (node, name) => {
    try {
      return labExec(node, 'ip', '-d', '-o', 'link', 'show', 'dev', name);
    } catch {
      return '';
    }
  };

  async function login(page) {
    await page.goto(url(1));
    await page.getByLabel('Administrator').fill('admin');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('navigation').waitFor();
  }

  const rows = async (table, where) =>
    (await domainCall(1, { request: 'query', table, ...(where ? { where } : {}) })).rows;

  // What another administrator does meanwhile, through node2.
  async function otherAdmin(ops) {
    const r = await domainCall(2, { request: 'submit', ops, actor: 'other-admin' });
    assert.ok(!r.error, JSON.stringify(r.error));
    await waitFor('node1 has it', async () => (await domainStatus(1)).version >= r.version,
      { timeoutMs: 10_000, intervalMs: 100 });
  }

  // The field's error (the server's or the UI's own): aria-invalid, and its text names the cause.
  async function errorAt(field, pattern) {
    await waitFor('the error at its field', async () => (await field.getAttribute('aria-invalid')) === 'true',
      { timeoutMs: 15_000, intervalMs: 100 });
    const id = ((await field.getAttribute('aria-describedby')) || '').split(' ').find((x) => x.endsWith('-error'));
    assert.ok(id, 'the error is tied to the field');
    const text = await field.page().locator(`[id="${id}"]`).innerText();
    assert.match(text, pattern);
  }

  // The cluster setup wizard on node (fresh), up to its fencing step.
  async function setupStart(page, node, first) {
    await page.goto(url(node));
    await page.getByText('Set up this node').click();
    await page.getByLabel(first ? 'The first node of a new cluster' : 'An additional node of an existing cluster').check();
    await snap(page, `node${node}-start`);
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByText('Step 2 of 5').waitFor();
    await snap(page, `node${node}-network`);
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByText('Step 3 of 5').waitFor();
  }

  // The fencing step with a device the cluster has, then mail, Finish.
  async function setupFinish(page, node, { existing }) {
    await page.getByText('Step 4 of 5').waitFor({ timeout: 180_000 });
    if (existing) {
      await page.getByLabel('Use a device the cluster has already').check();
      const device = page.getByLabel('Device', { exact: true });
      await waitFor('the cluster\'s devices listed', async () =>
        (await device.locator('option').allInnerTexts()).some((o) => o.includes('pdu1')),
      { timeoutMs: 30_000, intervalMs: 200 });
      const options = await device.locator('option').allInnerTexts();
      await device.selectOption({ index: options.findIndex((o) => o.includes('pdu1')) });
    } else {
      await page.getByLabel('Add a new device').check();
      await page.getByLabel('Name', { exact: true }).fill('pdu1');
      await page.getByLabel('Address', { exact: true }).fill('198.18.0.254');
      await page.getByLabel('SNMP version').selectOption({ label: 'SNMPv2c' });
      await page.getByLabel('SNMP community (read-write)').fill('private');
    }
    await page.getByLabel(`Outlet of node${node}`).fill(String(node));
    if (!existing) {
      await page.getByRole('button', { name: 'Test the device' }).click();
      await page.getByText(/answers|works|ok/i).first().waitFor({ timeout: 30_000 });
    }
    await snap(page, `node${node}-fencing`);
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByText('Step 5 of 5').waitFor();
    await snap(page, `node${node}-mail`);
    await page.getByRole('button', { name: 'Finish' }).click();
    await page.getByText('This node is set up').waitFor({ timeout: 60_000 });
    await snap(page, `node${node}-done`);
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    lab('up', '3');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    const violations = watch ? await watch.stop() : [];
    const pids = labProcesses();
    lab('down');
    assert.deepEqual(leftovers(pids), NOTHING_LEFT, 'down leaves nothing behind');
    assert.deepEqual(violations, [], 'no VM ever ran on two nodes');
  });

  test('node1_creates_the_cluster_with_a_tested_fence_device', async () => {
    const page = await newPage();
    await setupStart(page, 1, true);
    await page.getByLabel('Cluster name').fill('wizcluster');
    await page.getByLabel('Administrator').fill('admin');
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Password again').fill(PASSWORD);
    await snap(page, 'node1-create');
    await page.getByRole('button', { name: 'Create the cluster' }).click();
    await setupFinish(page, 1, { existing: false });
    const [dev] = (await domainCall(1, { request: 'query', table: 'fence_devices' })).rows;
    assert.equal(dev.name, 'pdu1');
    await page.close();
  });

  test('nodes_2_and_3_join_and_a_wrong_password_lands_at_its_field', async () => {
    for (const node of [2, 3]) {
      const page = await newPage();
      await setupStart(page, node, false);
      await page.getByLabel('Address of a member').fill('198.18.0.1');
      await page.getByLabel('Administrator').fill('admin');
      const password = page.getByLabel('Password', { exact: true });
      if (node === 2) {
        await password.fill('not-the-password');
        await page.getByRole('button', { name: 'Join the cluster' }).click();
        // The server's refusal, at the password field (aria-describedby).
        await waitFor('the error at the password field', async () =>
          (await password.getAttribute('aria-invalid')) === 'true', { timeoutMs: 30_000, intervalMs: 200 });
        await snap(page, 'node2-wrong-password');
        const s = await domainCall(2, { request: 'status' });
        assert.ok(!s.node_id, 'node2 did not join');
      }
      await password.fill(PASSWORD);
      await page.getByRole('button', { name: 'Join the cluster' }).click();
      await setupFinish(page, node, { existing: true });
      await page.close();
    }
    await waitFor('three nodes in sync', () => converged([1, 2, 3]), { timeoutMs: 90_000, intervalMs: 500 });
    const outlets = (await domainCall(1, { request: 'query', table: 'fence_outlets' })).rows;
    assert.deepEqual(outlets.map((o) => o.outlet).sort(), ['1', '2', '3']);
  });

  test('the_new_vm_wizard_creates_a_vm_that_then_runs', async () => {
    const page = await newPage();
    await page.goto(url(1));
    await page.getByLabel('Administrator').fill('admin');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    // Joined nodes start in standby: make them active on the Nodes page.
    await page.goto(`${url(1)}#/nodes`);
    for (const node of ['node2', 'node3']) {
      await page.getByRole('group', { name: `State of ${node}` }).getByRole('button', { name: 'Active' }).click();
      await waitFor(`${node} active`, async () => {
        const [n] = (await domainCall(1, { request: 'query', table: 'nodes', where: { name: node } })).rows;
        return n?.state === 'active';
      }, { timeoutMs: 15_000, intervalMs: 200 });
    }
    await snap(page, 'nodes-active');
    watch = safetyWatcher();
    await page.goto(`${url(1)}#/vms`);
    await page.getByRole('button', { name: 'New VM…' }).click();
    await snap(page, 'vm-wizard-start');
    const wizard = page.getByRole('dialog');
    const next = async (step) => {
      await wizard.getByRole('button', { name: 'Next' }).click();
      await wizard.getByText(`Step ${step} of 6`).waitFor({ timeout: 10_000 });
      await snap(page, `vm-wizard-${step}`);
    };
    await wizard.getByLabel('Name', { exact: true }).fill('wiz1');
    await wizard.getByLabel('Memory', { exact: true }).fill('64');
    await wizard.getByLabel('Unit of Memory').selectOption({ label: 'MiB' });
    // A new 20 GiB disk on the share (the wizard's default): the node
    // agent that starts the VM makes its image.
    for (const step of [2, 3, 4, 5]) await next(step);
    await wizard.getByLabel(/^On: restarted/).check();
    await next(6);
    await wizard.getByRole('button', { name: 'Create the VM' }).click();
    await wizard.getByText('wiz1 is created').waitFor({ timeout: 30_000 });
    await snap(page, 'vm-wizard-created');
    await wizard.getByRole('button', { name: 'Start wiz1' }).click();
    await waitFor('wiz1 running', async () => (await whereRunning('wiz1')).length === 1,
      { timeoutMs: 60_000, intervalMs: 250 });
    await page.goto(`${url(1)}#/vms`);
    await page.getByRole('row', { name: /wiz1/ }).getByText('Running').waitFor({ timeout: 30_000 });
    await snap(page, 'vms-wiz1-running');
    const [vm] = (await domainCall(1, { request: 'query', table: 'vms', where: { name: 'wiz1' } })).rows;
    assert.equal(vm.memory_mib, 64);
    assert.equal(vm.ha, 'on');
    const [disk] = (await domainCall(1, { request: 'query', table: 'disks' })).rows;
    assert.equal(disk.kind, 'shared');
    const image = statSync(hostPath(disk.path));
    assert.equal(image.size, disk.size_mib * 1024 * 1024, 'the image has the disk\'s size');
    assert.ok(image.blocks * 512 < 1024 * 1024, 'and is sparse');

    // A name that is taken: the error at the name field, nothing made.
    await page.getByRole('button', { name: 'New VM…' }).click();
    const again = page.getByRole('dialog');
    const name = again.getByLabel('Name', { exact: true });
    await name.fill('wiz1');
    await again.getByLabel('Memory', { exact: true }).fill('64');
    await again.getByLabel('Unit of Memory').selectOption({ label: 'MiB' });
    await again.getByRole('button', { name: 'Next' }).click();
    await waitFor('the error at the name field', async () => (await name.getAttribute('aria-invalid')) === 'true',
      { timeoutMs: 10_000, intervalMs: 200 });
    await snap(page, 'vm-wizard-name-taken');
    assert.equal((await domainCall(1, { request: 'query', table: 'vms' })).rows.length, 1);
    assert.deepEqual(errors, []);
  });

  test('the_cluster_network_wizard_checks_the_path_and_makes_a_switch', async () => {
    const page = await newPage();
    await login(page);
    await page.goto(`${url(1)}#/networks`);
    await page.getByRole('button', { name: 'Cluster network…' }).click();
    const wizard = page.getByRole('dialog');
    await wizard.getByText(/Step 1 of 4/).waitFor({ timeout: 15_000 });
    // The interface that carries node1's address is chosen already.
    assert.equal(await wizard.getByLabel('Use eth0').isChecked(), true);
    const mtu = wizard.getByLabel('MTU', { exact: true });
    await mtu.fill('10000');
    await errorAt(mtu, /576 to 9000/);
    const vlan = wizard.getByLabel('VLAN ID', { exact: true });
    await vlan.fill('5000');
    await errorAt(vlan, /1 to 4094/);
    await vlan.fill('');
    await wizard.getByLabel('Jumbo frames (MTU 9000)').check();
    assert.equal(await mtu.inputValue(), '9000');
    await wizard.getByRole('note').filter({ hasText: 'must support this MTU' }).waitFor();
    await snap(page, 'net-wizard-jumbo');
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByText(/Step 2 of 4/).waitFor();
    // A real check: ping with don't-fragment from node1 to the others,
    // whose veths take 1500 bytes.
    await wizard.getByRole('button', { name: 'Check every node' }).click();
    for (const node of ['node2', 'node3']) {
      const row = wizard.getByRole('row', { name: new RegExp(node) });
      await row.getByText('Does not pass').waitFor({ timeout: 30_000 });
      assert.match(await row.innerText(), /at most 1[,.]?500 bytes/);
    }
    await snap(page, 'net-wizard-check-9000');
    await wizard.getByRole('button', { name: 'Back' }).click();
    await wizard.getByLabel('Jumbo frames (MTU 9000)').uncheck();
    assert.equal(await mtu.inputValue(), '1500');
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByRole('button', { name: 'Check every node' }).click();
    for (const node of ['node2', 'node3'])
      await wizard.getByRole('row', { name: new RegExp(node) }).getByText('Passes').waitFor({ timeout: 30_000 });
    await snap(page, 'net-wizard-check-1500');
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByText(/Step 3 of 4/).waitFor();
    // eth0 carries the interconnect: the wizard warns; the lab's eth1
    // (no address, a port of the host's VM bridge) is the one to use.
    await wizard.getByLabel('Use eth0').check();
    await wizard.getByRole('note').filter({ hasText: 'carry the interconnect too' }).waitFor();
    await wizard.getByLabel('Use eth0').uncheck();
    await wizard.getByLabel('Use eth1').check();
    assert.equal(await wizard.getByRole('note').filter({ hasText: 'carry the interconnect too' }).count(), 0);
    const name = wizard.getByLabel('Name of the virtual switch');
    assert.equal(await name.inputValue(), 'vmnet');
    // Meanwhile another administrator makes a switch of that name.
    await otherAdmin([insertOp('networks', { name: 'vmnet', uplinks: [] })]);
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByText(/Step 4 of 4/).waitFor();
    await wizard.getByLabel('Apply now').check();
    await wizard.getByRole('button', { name: 'Finish' }).click();
    await errorAt(name, /already used/);
    await wizard.getByText(/Step 3 of 4/).waitFor();
    await snap(page, 'net-wizard-name-taken');
    assert.deepEqual((await rows('networks')).map((n) => n.name), ['vmnet'], 'nothing of the batch written');
    await name.fill('vmswitch');
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByRole('button', { name: 'Finish' }).click();
    await wizard.getByRole('status').filter({ hasText: 'The networks are saved.' }).waitFor({ timeout: 15_000 });
    await snap(page, 'net-wizard-done');
    const nets = Object.fromEntries((await rows('networks')).map((n) => [n.name, n]));
    assert.deepEqual(nets.interconnect.uplinks, ['eth0']);
    assert.equal(nets.interconnect.mtu, 1500);
    assert.equal(nets.interconnect.bonding_mode, 'none');
    assert.equal(nets.interconnect.vlan_id ?? null, null);
    assert.deepEqual(nets.vmswitch.uplinks, ['eth1']);
    // Every node's agent makes the switch: a bridge with eth1 plugged in.
    for (const node of [1, 2, 3])
      await waitFor(`node${node} has the bridge hv-vmswitch with eth1`, () =>
        ipLink(node, 'eth1').includes('master hv-vmswitch'), { timeoutMs: 15_000, intervalMs: 200 });
    await wizard.getByRole('button', { name: 'Close' }).last().click();
    const row = (name) => page.getByRole('row', { name: new RegExp(`^${name}\\b`) });
    await row('vmswitch').getByText('Ready on 3 of 3 nodes').waitFor({ timeout: 15_000 });
    await row('vmnet').getByText('Ready on 3 of 3 nodes').waitFor({ timeout: 15_000 });
    await row('interconnect').getByText(/stored, not applied/).waitFor();
    // A switch on the interface that carries the interconnect: no node
    // makes it a bridge port (the node would lose its address); the page
    // says why, per node, and the nodes stay reachable.
    await otherAdmin([insertOp('networks', { name: 'unsafe', uplinks: ['eth0'] })]);
    await row('unsafe').getByText('Not ready on 3 of 3 nodes').waitFor({ timeout: 15_000 });
    assert.match(await row('unsafe').innerText(), /node2: eth0 carries 198\.18\.0\.2/);
    await snap(page, 'networks-switch-states');
    for (const node of [1, 2, 3]) assert.doesNotMatch(ipLink(node, 'eth0'), /master/);
    assert.ok(!ipLink(1, 'hv-unsafe'), 'no bridge for a switch whose port cannot be had');
    const [unsafe] = await rows('networks', { name: 'unsafe' });
    await otherAdmin([{ op: 'delete', table: 'networks', id: unsafe.id }]);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('the_storage_wizard_makes_the_esan_pair_and_its_disks', async () => {
    const page = await newPage();
    await login(page);
    await page.goto(`${url(1)}#/storage`);
    await page.getByRole('button', { name: 'Storage wizard…' }).click();
    const wizard = page.getByRole('dialog');
    await wizard.getByText(/Step 1 of 4/).waitFor({ timeout: 15_000 });
    const node2 = wizard.getByLabel('node2', { exact: true });
    await node2.uncheck();
    await errorAt(node2, /exactly two nodes/);
    await node2.check();
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByText(/Step 2 of 4/).waitFor();
    const esanName = wizard.getByLabel('Name', { exact: true });
    assert.equal(await esanName.inputValue(), 'esan');
    await wizard.getByLabel('Size', { exact: true }).fill('1');
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByText(/Step 3 of 4/).waitFor();
    await wizard.getByLabel('Create a disk on the cluster share').check();
    await wizard.getByLabel('Size', { exact: true }).fill('0');
    await errorAt(wizard.getByLabel('Size', { exact: true }), /1 MiB/);
    await wizard.getByLabel('Size', { exact: true }).fill('1');
    // Meanwhile another administrator takes the eSAN disk's name.
    await otherAdmin([insertOp('disks', { name: 'esan', kind: 'shared', size_mib: 16, path: '/srv/haven/shared/other.img' })]);
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByText(/Step 4 of 4/).waitFor();
    await wizard.getByLabel('Apply now').check();
    await wizard.getByRole('button', { name: 'Finish' }).click();
    await wizard.getByText(/Step 2 of 4/).waitFor({ timeout: 15_000 });
    await errorAt(esanName, /already used/);
    await snap(page, 'storage-wizard-name-taken');
    assert.ok((await rows('nodes')).every((n) => !n.esan_member), 'no node joined the eSAN');
    assert.deepEqual((await rows('disks')).map((x) => x.name).sort(), ['esan', 'wiz1-disk0']);
    await esanName.fill('esan1');
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByRole('button', { name: 'Finish' }).click();
    await wizard.getByRole('status').filter({ hasText: 'The storage is set up.' }).waitFor({ timeout: 15_000 });
    await snap(page, 'storage-wizard-done');
    const members = (await rows('nodes')).filter((n) => n.esan_member).map((n) => n.name).sort();
    assert.deepEqual(members, ['node1', 'node2']);
    const disks = Object.fromEntries((await rows('disks')).map((x) => [x.name, x]));
    assert.equal(disks.esan1.kind, 'esan');
    assert.equal(disks.esan1.size_mib, 1024);
    assert.deepEqual([...disks.esan1.nodes].sort(), [1, 2]);
    assert.equal(disks.shared.kind, 'shared');
    assert.equal(disks.shared.path, '/srv/haven/shared/shared.img');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('the_new_vm_wizard_shows_a_mac_taken_meanwhile_at_its_field', async () => {
    const page = await newPage();
    await login(page);
    await page.goto(`${url(1)}#/vms`);
    await page.getByRole('button', { name: 'New VM…' }).click();
    const wizard = page.getByRole('dialog');
    await wizard.getByLabel('Name', { exact: true }).fill('wiz2');
    await wizard.getByLabel('Memory', { exact: true }).fill('64');
    await wizard.getByLabel('Unit of Memory').selectOption({ label: 'MiB' });
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByText('Step 2 of 6').waitFor();
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByText('Step 3 of 6').waitFor();
    await wizard.getByLabel('Virtual switch').selectOption({ label: 'vmswitch' });
    const mac = wizard.getByLabel('MAC address');
    await mac.fill('52:54:00:zz:00:01');
    await errorAt(mac, /six hex pairs/);
    await mac.fill('52:54:00:AA:BB:01');
    const [vmnet] = await rows('networks', { name: 'vmnet' });
    await otherAdmin([
      insertOp('vms', { name: 'other-vm', memory_mib: 32 }),
      insertOp('vm_nics', { vm_id: { ref: 0 }, network_id: vmnet.id, mac: '52:54:00:aa:bb:01' }),
    ]);
    for (const step of [4, 5, 6]) {
      await wizard.getByRole('button', { name: 'Next' }).click();
      await wizard.getByText(`Step ${step} of 6`).waitFor();
    }
    await wizard.getByRole('button', { name: 'Create the VM' }).click();
    await wizard.getByText('Step 3 of 6').waitFor({ timeout: 15_000 });
    await errorAt(mac, /already used/);
    await snap(page, 'vm-wizard-mac-taken');
    assert.deepEqual((await rows('vms')).map((v) => v.name).sort(), ['other-vm', 'wiz1'], 'no wiz2');
    assert.ok(!(await rows('disks')).some((x) => x.name.startsWith('wiz2')), 'and no disk of it');
    await mac.fill('52:54:00:aa:bb:02');
    for (let i = 0; i < 3; i++) await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByRole('button', { name: 'Create the VM' }).click();
    await wizard.getByText('wiz2 is created').waitFor({ timeout: 30_000 });
    const [vm] = await rows('vms', { name: 'wiz2' });
    const [vmswitch] = await rows('networks', { name: 'vmswitch' });
    const [nic] = await rows('vm_nics', { vm_id: vm.id });
    assert.equal(nic.mac, '52:54:00:aa:bb:02');
    assert.equal(nic.network_id, vmswitch.id);
    // Started, the VM's NIC is plugged into the switch's bridge on its node.
    await wizard.getByRole('button', { name: 'Start wiz2' }).click();
    await waitFor('wiz2 running', async () => (await whereRunning('wiz2')).length === 1,
      { timeoutMs: 60_000, intervalMs: 250 });
    const [node] = await whereRunning('wiz2');
    const ifaces = labExec(node, 'virsh', '-q', '-c', 'qemu:///system', 'domiflist', 'wiz2');
    assert.match(ifaces, /bridge\s+hv-vmswitch\s+virtio\s+52:54:00:aa:bb:02/);
    const tap = ifaces.trim().split(/\s+/)[0];
    assert.match(ipLink(node, tap), /master hv-vmswitch/);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
