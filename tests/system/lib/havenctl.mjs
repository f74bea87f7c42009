// SPDX-License-Identifier: LGPL-2.1-or-later
// Runs build/bin/havenctl inside a lab node (through haven-lab exec, so it
// talks to that node's haven-domaind at /run/haven/domaind.sock) and parses
// its --json output. System tests check what an administrator would see
// with these instead of shelling out on their own.
import { join } from 'node:path';
import { ROOT, labTry } from './lab.mjs';

export const HAVENCTL = join(ROOT, 'build', 'bin', 'havenctl');

// Exit statuses of havenctl (docs/havenctl.md).
export const EXIT_OK = 0;
export const EXIT_FAILED = 1; // domaind answered with an error
export const EXIT_USAGE = 2; // bad arguments, or domaind not reachable

// Runs `havenctl ARGS...` in node; never throws for a non-zero exit.
// Returns {status, stdout, stderr, json}: json is the parsed stdout when
// --json was given and stdout parses (undefined otherwise). `job log
// --follow --json` prints one object per line: json is then the array.
export function havenctlTry(node, ...args) {
  const r = labTry('exec', String(node), HAVENCTL, ...args);
  const result = { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', json: undefined };
  if (args.includes('--json') && result.stdout.trim() !== '') {
    try {
      result.json = JSON.parse(result.stdout);
    } catch {
      try {
        result.json = result.stdout.trim().split('\n').map((line) => JSON.parse(line));
      } catch {
        // left undefined: the caller sees stdout
      }
    }
  }
  return result;
}

// Runs `havenctl ARGS...` in node and returns the parsed JSON (with --json)
// or stdout. Throws with havenctl's stderr when it exits non-zero; the error
// carries .status, .stdout and .stderr.
export function havenctl(node, ...args) {
  const r = havenctlTry(node, ...args);
  if (r.status !== EXIT_OK) {
    const e = new Error(`havenctl ${args.join(' ')} on node ${node} exited ${r.status}: ${r.stderr.trim()}`);
    Object.assign(e, { status: r.status, stdout: r.stdout, stderr: r.stderr });
    throw e;
  }
  if (args.includes('--json')) {
    if (r.json === undefined) throw new Error(`havenctl ${args.join(' ')}: output is not JSON: ${r.stdout}`);
    return r.json;
  }
  return r.stdout;
}

// `havenctl status --json` of node: {cluster, quorate, synced, version,
// config_version, checksum, node_id, node_name, manager, members, pending_changes, vms}.
export function clusterStatus(node) {
  return havenctl(node, 'status', '--json');
}

// The rows of a table as node sees them (`havenctl get TABLE --json`), or
// one row when name is given.
export function getRows(node, table, name) {
  return name === undefined ? havenctl(node, 'get', table, '--json') : havenctl(node, 'get', table, String(name), '--json');
}
