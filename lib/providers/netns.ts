// A network of its own for a server that binds every interface (PicoShare
// listens on ":PORT" and has no host option): a network namespace joined to
// the host by one veth pair on addresses from 198.18.0.0/15, the block set
// aside for network benchmarks (RFC 2544). Inside it, "every interface" is
// its loopback and that link, which only this host can reach. Needs root and
// iproute2; without them the caller runs the server on the host and warns.
//
//   const ns = await createServerNetns()     // or { error } when it cannot be made
//   spawn(...ns.wrap(['picoshare', '-db', db]))  // then http://${ns.serverAddress}:PORT
//   await ns.remove()                        // the veth pair goes with it
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { $ } from 'zx';
import { pidAlive } from '../pids.ts';
import { findTool, missingToolMessage } from '../tools.ts';

/** Names are ups-PID-N, so a later run can remove what a killed one left (sweepOrphanNetns). */
const PREFIX = 'ups-';
/** veth MTU: the most veth takes, close to loopback's 65536, so large writes are not cut into 1500-byte frames. */
const MTU = '65535';

export interface ServerNetns {
  name: string;
  /** The server's address as the host reaches it. */
  serverAddress: string;
  /** Every port is free in a namespace of its own: PicoShare's default. */
  serverPort: number;
  /** argv that runs `argv` inside the namespace (same pid: `ip netns exec` execs it). */
  wrap(argv: string[]): string[];
  remove(): Promise<void>;
}

let counter = 0;

/** The /30 subnets of 198.18.0.0/15 already on some interface of the host: a new pair takes the next free one. */
async function usedSubnets(): Promise<Set<number>> {
  const out = (await $({ quiet: true })`ip -4 -o addr show`).stdout;
  const used = new Set<number>();
  for (const m of out.matchAll(/inet 198\.(18|19)\.(\d+)\.(\d+)\//g)) {
    used.add((((Number(m[1]) - 18) << 16) | (Number(m[2]) << 8) | Number(m[3])) >> 2);
  }
  return used;
}

function address(subnet: number, host: 1 | 2): string {
  const n = (subnet << 2) | host;
  return `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
}

export async function createServerNetns(): Promise<ServerNetns | { error: string }> {
  if (process.getuid?.() !== 0) return { error: 'not root (a network namespace with a veth pair needs root)' };
  if (!findTool('ip')) return { error: missingToolMessage('ip') };
  const n = counter++;
  const name = `${PREFIX}${process.pid}-${n}`;
  // Interface names: at most 15 characters.
  const hostIf = `ups${process.pid}h${n}`;
  const nsIf = `ups${process.pid}n${n}`;
  try {
    await $({ quiet: true })`ip netns add ${name}`;
    await $({ quiet: true })`ip link add ${hostIf} type veth peer name ${nsIf} netns ${name}`;
    const serverAddress = await underSubnetLock(async () => {
      const used = await usedSubnets();
      let subnet = 0;
      while (used.has(subnet)) subnet++;
      await $({ quiet: true })`ip addr add ${address(subnet, 1)}/30 dev ${hostIf}`;
      return address(subnet, 2);
    });
    await $({ quiet: true })`ip link set ${hostIf} mtu ${MTU} up`;
    await $({ quiet: true })`ip -n ${name} addr add ${serverAddress}/30 dev ${nsIf}`;
    await $({ quiet: true })`ip -n ${name} link set ${nsIf} mtu ${MTU} up`;
    await $({ quiet: true })`ip -n ${name} link set lo up`;
    return {
      name,
      serverAddress,
      serverPort: 4001,
      wrap: (argv) => ['ip', 'netns', 'exec', name, ...argv],
      remove: () => removeNetns(name),
    };
  } catch (e) {
    await removeNetns(name);
    const err = e as { stderr?: string; message: string };
    return { error: `ip: ${(err.stderr || err.message).trim().split('\n')[0]}` };
  }
}

/**
 * Runs side by side (shards on one machine) must not take the same subnet: two host interfaces on one /30
 * route a run's requests to the other's server. Choosing a subnet and adding it happen under a lock file
 * (held for milliseconds; one left by a killed run is taken over).
 */
async function underSubnetLock<T>(f: () => Promise<T>): Promise<T> {
  const lock = path.join(os.tmpdir(), 'ups-netns-subnet.lock');
  for (let waited = 0; ; waited += 20) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder = NaN;
      try { holder = Number(fs.readFileSync(lock, 'utf8')); } catch { continue; }
      if (Number.isInteger(holder) && holder > 0 && !pidAlive(holder)) { fs.rmSync(lock, { force: true }); continue; }
      if (waited > 30_000) throw new Error(`${lock}: held by process ${holder} for over 30 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  try { return await f(); } finally { fs.rmSync(lock, { force: true }); }
}

/** Deleting the namespace deletes its end of the veth pair, and with it the host's end. */
async function removeNetns(name: string): Promise<void> {
  await $({ quiet: true, nothrow: true })`ip netns delete ${name}`;
}

/** Namespaces (ups-PID-N) of runs whose process is gone: a run killed with SIGKILL cannot remove its own. */
export async function sweepOrphanNetns(): Promise<string[]> {
  let names: string[];
  try { names = fs.readdirSync('/run/netns'); } catch { return []; }
  const orphans = names.filter((n) => {
    const pid = Number(new RegExp(`^${PREFIX}(\\d+)-\\d+$`).exec(n)?.[1] ?? NaN);
    return Number.isInteger(pid) && !pidAlive(pid);
  });
  for (const n of orphans) await removeNetns(n);
  return orphans;
}
