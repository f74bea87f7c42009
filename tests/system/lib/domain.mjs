// SPDX-License-Identifier: LGPL-2.1-or-later
// A client for haven-domaind's local socket (framed JSON: 4-byte big-endian
// length + one JSON object), reaching a lab node's socket from the host
// through /proc/<node's PID 1>/root.
import { connect } from 'node:net';
import { initPid } from './lab.mjs';

export function socketPath(node) {
  const pid = initPid(node);
  if (!pid) throw new Error(`node${node} is powered off`);
  return `/proc/${pid}/root/run/haven/domaind.sock`;
}

export class DomainClient {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.waiters = [];   // replies, in order
    this.events = [];    // pushed events
    this.eventWaiters = [];
    this.closed = false;
    sock.on('data', (d) => this.onData(d));
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w.reject(new Error('connection closed'));
    });
    sock.on('error', () => {});
  }

  static connect(node) {
    return DomainClient.connectPath(socketPath(node));
  }

  static connectPath(path) {
    return new Promise((resolve, reject) => {
      const s = connect({ path });
      s.once('connect', () => resolve(new DomainClient(s)));
      s.once('error', reject);
    });
  }

  onData(d) {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4) {
      const n = this.buf.readUInt32BE(0);
      if (this.buf.length < 4 + n) break;
      const msg = JSON.parse(this.buf.subarray(4, 4 + n).toString('utf8'));
      this.buf = this.buf.subarray(4 + n);
      if (msg.event) {
        this.events.push(msg);
        for (const w of this.eventWaiters.splice(0)) w();
      } else {
        const w = this.waiters.shift();
        if (w) w.resolve(msg);
      }
    }
  }

  sendRaw(buf) {
    this.sock.write(buf);
  }

  call(req) {
    const text = Buffer.from(JSON.stringify(req), 'utf8');
    const head = Buffer.alloc(4);
    head.writeUInt32BE(text.length);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.sock.write(Buffer.concat([head, text]));
    });
  }

  // Waits for a pushed event matching pred (already received ones count).
  async waitEvent(pred, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex(pred);
      if (i >= 0) return this.events.splice(i, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for an event');
      await new Promise((r) => {
        const t = setTimeout(r, left);
        this.eventWaiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  close() {
    this.sock.destroy();
  }
}

// One call on a fresh connection.
export async function domainCall(node, req) {
  const c = await DomainClient.connect(node);
  try {
    return await c.call(req);
  } finally {
    c.close();
  }
}

export function insertOp(table, values) {
  return { op: 'insert', table, values };
}

export const LAB_PASSWORD = 'lab-admin-password';

export function domainStatus(node) {
  return domainCall(node, { request: 'status' });
}

// Every listed node reports the same version and checksum and is synced;
// returns their statuses, or false.
export async function converged(nodes) {
  const s = await Promise.all(nodes.map((n) => domainStatus(n).catch(() => null)));
  if (s.some((x) => !x || !x.synced)) return false;
  return s.every((x) => x.version === s[0].version && x.checksum === s[0].checksum) && s;
}

// Creates a cluster on node 1 and joins nodes 2..count through node 1's
// address; returns the converged statuses.
export async function createCluster(count, waitFor) {
  const r = await domainCall(1, {
    request: 'cluster-create', name: 'labcluster', admin: 'admin', password: LAB_PASSWORD,
  });
  if (r.error) throw new Error(`create: ${JSON.stringify(r.error)}`);
  for (let n = 2; n <= count; n++) {
    const j = await domainCall(n, {
      request: 'cluster-join', address: '198.18.0.1', admin: 'admin', password: LAB_PASSWORD,
    });
    if (j.error) throw new Error(`node${n} join: ${JSON.stringify(j.error)}`);
  }
  const nodes = Array.from({ length: count }, (_, i) => i + 1);
  return waitFor('all nodes converged', () => converged(nodes), { timeoutMs: 60_000 });
}
