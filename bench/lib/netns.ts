// Two pods as network namespaces joined by a veth pair, addresses from
// 198.18.0.0/15 only. Names carry our pid; an exit hook deletes whatever an
// aborted run left behind (the veth pair goes with its namespaces).
import { execFileSync } from 'node:child_process';
import { must } from './procs.js';

const live = new Set<string>();
let hooked = false;

function deleteSync(name: string): void {
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
}

export class PodNetwork {
  private constructor(
    readonly a: string,
    readonly b: string,
    readonly addrA: string,
    readonly addrB: string,
  ) {}

  static async create(tag: string, subnet = '198.18.200'): Promise<PodNetwork> {
    // `<pid>-<random>`: a test can tell this process's namespaces from another run's.
    const id = `${process.pid.toString(36)}-${Math.floor(Math.random() * 1296).toString(36)}`;
    const net = new PodNetwork(`mlbench-${tag}-a-${id}`, `mlbench-${tag}-b-${id}`, `${subnet}.1`, `${subnet}.2`);
    if (!hooked) {
      hooked = true;
      process.once('exit', () => {
        for (const ns of live) deleteSync(ns);
      });
    }
    for (const ns of [net.a, net.b]) {
      await must(['ip', 'netns', 'add', ns]);
      live.add(ns);
      await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    await must(['ip', 'link', 'add', 'mlb-a', 'netns', net.a, 'type', 'veth', 'peer', 'name', 'mlb-b', 'netns', net.b]);
    for (const [ns, dev, addr] of [
      [net.a, 'mlb-a', net.addrA],
      [net.b, 'mlb-b', net.addrB],
    ] as const) {
      await must(['ip', '-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]);
      await must(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    }
    return net;
  }

  /** Deleting a namespace kills nothing: every process in it was started by us and is stopped first. */
  destroy(): void {
    for (const ns of [this.a, this.b]) {
      deleteSync(ns);
      live.delete(ns);
    }
  }
}
