// Network namespaces for tests, on the mesh lab's one namespace layer
// (src/demo/netns.ts): it names every namespace with the suite's prefix and a
// per-run tag, so parallel runs cannot collide, kills whatever is left in the
// namespaces before deleting them, and an exit hook cleans up after an
// aborted run. What this file adds is what tests need on top: veth pairs with
// their addresses in one call, and the iptables module's seams (CommandRunner,
// ProcessStarter) bound to a namespace.
//
// Tests must use 198.18.0.0/15 and 2001:db8::/32 addresses only.
import { execFileSync } from 'node:child_process';
import { isRoot, Namespaces } from '../../src/demo/netns.js';
import type { ExecOptions, Proc, Result } from '../../src/demo/proc.js';
import type { CommandRunner } from '../../src/iptables/runner.js';
import type { ProcessStarter, StartedProcess } from '../../src/iptables/process.js';

/** Why namespace tests cannot run here, or undefined if they can. */
export function netnsUnavailable(): string | undefined {
  if (!isRoot()) return 'network-namespace tests need root (CI runs as root)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'iproute2 (`ip`) is not installed';
  }
  return undefined;
}

export interface VethEnd {
  /** Namespace name (from netns()). */
  ns: string;
  /** Interface name (at most 15 characters); generated when omitted. */
  ifname?: string;
  /** Addresses with prefix, e.g. "198.18.0.1/24" or "2001:db8:1::1/64". */
  addrs?: string[];
}

export class NetLab {
  /** The layer underneath, for suites that also need its process handles (Proc). */
  readonly namespaces: Namespaces;
  private counter = 0;

  constructor(prefix = 'mlt') {
    this.namespaces = new Namespaces(prefix);
  }

  /** Creates a namespace with lo up; returns its name. `etc` files (resolv.conf) are what `ip netns exec` mounts over /etc. */
  netns(label = 'ns', etc: Record<string, string> = {}): Promise<string> {
    return this.namespaces.add(label, etc);
  }

  /**
   * A veth pair between two namespaces, with addresses and both ends up. No
   * IPv6 link-local address (it appears asynchronously, which would make
   * snapshots of addresses and routes racy) and no DAD.
   */
  async veth(a: VethEnd, b: VethEnd): Promise<[string, string]> {
    const an = a.ifname ?? this.ifname();
    const bn = b.ifname ?? this.ifname();
    await this.namespaces.veth(a.ns, an, b.ns, bn);
    for (const [end, name] of [
      [a, an],
      [b, bn],
    ] as const) {
      for (const addr of end.addrs ?? []) await this.namespaces.addr(end.ns, name, addr);
      await this.namespaces.up(end.ns, name);
    }
    return [an, bn];
  }

  /** A bridge inside a namespace; attach veth ends with attach(). */
  async bridge(ns: string, addrs: string[] = [], name = this.ifname('br')): Promise<string> {
    await this.namespaces.bridge(ns, name);
    for (const addr of addrs) await this.namespaces.addr(ns, name, addr);
    return name;
  }

  attach(ns: string, ifname: string, bridge: string): Promise<void> {
    return this.namespaces.attach(ns, ifname, bridge);
  }

  /** Runs a program inside `ns` (or here when undefined). Never throws on exit codes. */
  exec(ns: string | undefined, argv: readonly string[], opts?: ExecOptions): Promise<Result> {
    return this.namespaces.exec(ns, argv, opts);
  }

  /** Like exec, but throws with the command and what it said on failure. */
  must(ns: string | undefined, argv: readonly string[], opts?: ExecOptions): Promise<string> {
    return this.namespaces.must(ns, argv, opts);
  }

  /** A CommandRunner whose every command runs inside `ns`. */
  runner(ns: string): CommandRunner {
    return { run: (cmd, args, opts) => this.exec(ns, [cmd, ...args], opts) };
  }

  /** A ProcessStarter whose processes run inside `ns` and are stopped by cleanup(). */
  starter(ns: string): ProcessStarter {
    return { start: (cmd, args) => this.spawn(ns, [cmd, ...args]) };
  }

  /** Starts a long-lived process inside `ns`; cleanup() stops it. */
  spawn(ns: string | undefined, argv: readonly string[]): StartedProcess {
    return started(this.namespaces.spawn(ns, argv[0] ?? 'process', argv));
  }

  /** Stops every process and deletes every namespace this lab made; throws with every error. */
  async cleanup(): Promise<void> {
    const errors = await this.namespaces.cleanup();
    if (errors.length > 0) throw new Error(`netns cleanup: ${errors.join('; ')}`);
  }

  private ifname(kind = 'v'): string {
    return `${kind}${this.namespaces.tag}${this.counter++}`.slice(0, 15);
  }
}

/** The iptables module's view of a process (the probe exits when its stdin closes). */
function started(p: Proc): StartedProcess {
  return {
    lines: p.lines,
    waitFor: (match, timeoutMs) => p.waitFor(match, timeoutMs),
    stop: () => p.close(2_000),
    stderr: () => p.output(),
  };
}
