// Server network namespaces made side by side (shards of a run on one machine,
// or one run's environments) each get a subnet of their own: two host
// interfaces on one /30 would send a run's requests to the other's server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { $ } from 'zx';
import { createServerNetns, type ServerNetns } from '../lib/providers/netns.ts';
import { findTool } from '../lib/tools.ts';
import { needs } from './skips.mts';

test('namespaces made concurrently get distinct subnets, each routed to its own interface', { timeout: 60_000 }, async (t) => {
  if (process.getuid?.() !== 0) return t.skip(needs('root', 'not root: a network namespace needs root'));
  if (!findTool('ip')) return t.skip(needs('vm', 'iproute2 (ip) is not installed'));
  const made = await Promise.all(Array.from({ length: 4 }, () => createServerNetns()));
  const nets = made.filter((n): n is ServerNetns => !('error' in n));
  t.after(async () => { for (const n of nets) await n.remove(); });
  assert.equal(nets.length, 4, JSON.stringify(made.filter((n) => 'error' in n)));
  const addresses = nets.map((n) => n.serverAddress);
  assert.equal(new Set(addresses).size, 4, `addresses: ${addresses.join(', ')}`);
  // Each address is routed to one host interface of its own, and is the namespace's own.
  const devs = [];
  for (const n of nets) {
    devs.push(/ dev (\S+)/.exec((await $({ quiet: true })`ip -o route get ${n.serverAddress}`).stdout)?.[1]);
    assert.match((await $({ quiet: true })`ip -n ${n.name} -4 -o addr show`).stdout, new RegExp(`inet ${n.serverAddress.replaceAll('.', '\\.')}/30`));
  }
  assert.equal(new Set(devs).size, 4, `routes: ${devs.join(', ')}`);
});
