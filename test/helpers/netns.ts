// Network namespaces for tests: create namespaces, veth pairs and bridges, run
// commands and long-lived processes inside a namespace, and always clean up.
// Every name carries this process's pid, so parallel runs cannot collide, and
// a synchronous exit hook deletes whatever an aborted run left behind.
//
// Tests must use 198.18.0.0/15 and 2001:db8::/32 addresses only.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { execFileRunner, type CommandResult, type CommandRunner, type RunOptions } from '../../src/iptables/runner.js';
import { spawnStarter, type ProcessStarter, type StartedProcess } from '../../src/iptables/process.js';

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

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
  /** Namespace name; undefined for the namespace the test runs in. */
  ns: string | undefined;
  /** Interface name (at most 15 characters); generated when omitted. */
  ifname?: string;
  /** Addresses with prefix, e.g. "198.18.0.1/24" or "2001:db8:1::1/64". */
  addrs?: string[];
  /**
   * Keep the kernel's automatic IPv6 link-local address. Off by default: it
   * appears asynchronously after the link comes up, which makes snapshots of
   * addresses and routes racy.
   */
  ipv6LinkLocal?: boolean;
}

const live = new Set<NetLab>();
process.once('exit', () => {
  for (const lab of live) lab.cleanupSync();
});

export class NetLab {
  private readonly namespaces: string[] = [];
  private readonly hostLinks: string[] = [];
  private readonly processes: StartedProcess[] = [];
  private counter = 0;
  private readonly tag = `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;

  constructor(private readonly prefix = 'mlt') {
    live.add(this);
  }

  /** Creates a namespace with lo up; returns its name. */
  async netns(label = 'ns'): Promise<string> {
    const name = `${this.prefix}-${label}-${this.tag}-${this.counter++}`;
    await this.must(undefined, ['ip', 'netns', 'add', name]);
    this.namespaces.push(name);
    await this.must(name, ['ip', 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** A veth pair between two namespaces, with addresses (no DAD) and both ends up. */
  async veth(a: VethEnd, b: VethEnd): Promise<[string, string]> {
    const an = a.ifname ?? this.ifname();
    const bn = b.ifname ?? this.ifname();
    const create = ['ip', 'link', 'add', an, ...(a.ns ? ['netns', a.ns] : []), 'type', 'veth', 'peer', 'name', bn, ...(b.ns ? ['netns', b.ns] : [])];
    await this.must(undefined, create);
    if (!a.ns) this.hostLinks.push(an);
    if (!b.ns) this.hostLinks.push(bn);
    for (const [end, name] of [
      [a, an],
      [b, bn],
    ] as const) {
      if (!end.ipv6LinkLocal) await this.must(end.ns, ['ip', 'link', 'set', name, 'addrgenmode', 'none']);
      for (const addr of end.addrs ?? []) await this.addAddr(end.ns, name, addr);
      await this.must(end.ns, ['ip', 'link', 'set', name, 'up']);
    }
    return [an, bn];
  }

  /** A bridge inside a namespace; attach veth ends with attach(). */
  async bridge(ns: string | undefined, addrs: string[] = [], name = this.ifname('br')): Promise<string> {
    await this.must(ns, ['ip', 'link', 'add', name, 'type', 'bridge']);
    if (!ns) this.hostLinks.push(name);
    for (const addr of addrs) await this.addAddr(ns, name, addr);
    await this.must(ns, ['ip', 'link', 'set', name, 'up']);
    return name;
  }

  async attach(ns: string | undefined, ifname: string, bridge: string): Promise<void> {
    await this.must(ns, ['ip', 'link', 'set', ifname, 'master', bridge]);
  }

  async addAddr(ns: string | undefined, ifname: string, cidr: string): Promise<void> {
    const v6 = cidr.includes(':');
    await this.must(ns, ['ip', ...(v6 ? ['-6'] : []), 'addr', 'add', cidr, 'dev', ifname, ...(v6 ? ['nodad'] : [])]);
  }

  /** Runs a program inside `ns` (or here when undefined). Never throws on exit codes. */
  exec(ns: string | undefined, argv: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    const [cmd, ...args] = ns ? ['ip', 'netns', 'exec', ns, ...argv] : argv;
    return execFileRunner.run(cmd ?? '', args, opts);
  }

  /** Like exec, but throws with the command and its stderr on failure. */
  async must(ns: string | undefined, argv: readonly string[], opts?: RunOptions): Promise<string> {
    const r = await this.exec(ns, argv, opts);
    if (r.code !== 0) throw new Error(`${ns ? `[${ns}] ` : ''}${argv.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
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
    const [cmd, ...args] = ns ? ['ip', 'netns', 'exec', ns, ...argv] : argv;
    const p = spawnStarter.start(cmd ?? '', args);
    this.processes.push(p);
    return p;
  }

  /** Stops every process and deletes every namespace and link this lab made. */
  async cleanup(): Promise<void> {
    const errors: string[] = [];
    await Promise.all(this.processes.splice(0).map((p) => p.stop().catch((e: Error) => errors.push(e.message))));
    for (const link of this.hostLinks.splice(0)) await this.exec(undefined, ['ip', 'link', 'del', link]);
    for (const ns of this.namespaces.splice(0)) {
      const r = await this.exec(undefined, ['ip', 'netns', 'del', ns]);
      if (r.code !== 0) errors.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
    }
    live.delete(this);
    if (errors.length > 0) throw new Error(`netns cleanup: ${errors.join('; ')}`);
  }

  /** Last resort at process exit: no awaiting possible there. */
  cleanupSync(): void {
    for (const link of this.hostLinks) spawnQuiet(['ip', 'link', 'del', link]);
    for (const ns of this.namespaces) spawnQuiet(['ip', 'netns', 'del', ns]);
  }

  private ifname(kind = 'v'): string {
    return `${kind}${this.tag}${this.counter++}`.slice(0, 15);
  }
}

function spawnQuiet(argv: string[]): void {
  try {
    execFileSync(argv[0] ?? '', argv.slice(1), { stdio: 'ignore' });
  } catch {
    // best effort at exit
  }
}
