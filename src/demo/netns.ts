// Network namespaces for the mesh lab: create namespaces, veth pairs and a
// bridge, run commands and long-lived processes inside a namespace, give a
// namespace its own /etc/hosts and /etc/resolv.conf (`ip netns exec`
// bind-mounts /etc/netns/<ns>/<file> over /etc/<file>), and always clean up:
// every process we started, every process left in our namespaces (Envoy is
// meshlet's child), the /etc/netns entries and the namespaces themselves. A
// synchronous exit hook does the same for a run that dies half-way.
//
// Only 198.18.0.0/15 and 2001:db8::/32 addresses belong in here.
import { Proc, run, type ExecOptions, type Result } from './proc.js';
const { execFileSync } = process.getBuiltinModule('node:child_process');
const { randomBytes } = process.getBuiltinModule('node:crypto');
const { mkdirSync, rmdirSync, rmSync, writeFileSync } = process.getBuiltinModule('node:fs');

const NETNS_ETC = '/etc/netns';

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Why the lab cannot run here, or undefined when it can. */
export function labUnavailable(): string | undefined {
  if (!isRoot()) return 'the mesh lab needs root (network namespaces, iptables, Envoy as uid 1337)';
  const tools = [
    ['ip', ['-V']],
    ['iptables', ['--version']],
    ['setpriv', ['--version']],
    ['unshare', ['--version']],
    ['dumpcap', ['-v']],
    ['tshark', ['-v']],
  ] as const;
  for (const [tool, args] of tools) {
    try {
      execFileSync(tool, args, { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  return undefined;
}

const live = new Set<Namespaces>();
/** This process created /etc/netns, so it removes it once empty (retried at exit: others may use it meanwhile). */
let etcNetnsOwned = false;
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const n of live) n.cleanupSync();
    removeEtcNetns();
  });
}

function removeEtcNetns(): void {
  if (!etcNetnsOwned || live.size > 0) return;
  try {
    rmdirSync(NETNS_ETC);
    etcNetnsOwned = false;
  } catch {
    // not empty: a namespace of another run still uses it
  }
}

export class Namespaces {
  /** Short and unique per run, so parallel runs never collide. */
  readonly tag = `${(process.pid % 46656).toString(36)}${randomBytes(2).toString('hex')}`;
  private readonly names: string[] = [];
  private readonly procs: Proc[] = [];
  private readonly labels = new Map<string, number>();

  constructor(private readonly prefix = 'mlab') {
    live.add(this);
    hookExit();
  }

  /**
   * A namespace with lo up. `etc` files (hosts, resolv.conf) are bind-mounted
   * by `ip netns exec`. A label used again in this run gets a counter, so the
   * second namespace never collides with the first.
   */
  async add(label: string, etc: Record<string, string> = {}): Promise<string> {
    const seen = this.labels.get(label) ?? 0;
    this.labels.set(label, seen + 1);
    const name = `${this.prefix}-${label}-${this.tag}${seen > 0 ? `-${seen}` : ''}`;
    await this.must(undefined, ['ip', 'netns', 'add', name]);
    this.names.push(name);
    this.writeEtc(name, etc);
    await this.must(name, ['ip', 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** Writes /etc/netns/<ns>/<file>; seen by every later `ip netns exec` in that namespace. */
  writeEtc(ns: string, files: Record<string, string>): void {
    if (Object.keys(files).length === 0) return;
    try {
      mkdirSync(NETNS_ETC, { mode: 0o755 });
      etcNetnsOwned = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    mkdirSync(`${NETNS_ETC}/${ns}`, { recursive: true, mode: 0o755 });
    for (const [file, text] of Object.entries(files)) writeFileSync(`${NETNS_ETC}/${ns}/${file}`, text, { mode: 0o644 });
  }

  /**
   * A veth pair: `a` in namespace `aNs`, `b` in `bNs`. The pair is created
   * inside aNs, so the names only have to be unique there and in bNs.
   */
  async veth(aNs: string, a: string, bNs: string, b: string): Promise<void> {
    await this.must(aNs, ['ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b, 'netns', bNs]);
    for (const [ns, dev] of [
      [aNs, a],
      [bNs, b],
    ] as const) {
      // No link-local address: nothing appears asynchronously, no DAD.
      await this.must(ns, ['ip', 'link', 'set', dev, 'addrgenmode', 'none']);
    }
  }

  async addr(ns: string, dev: string, cidr: string): Promise<void> {
    const v6 = cidr.includes(':');
    await this.must(ns, ['ip', ...(v6 ? ['-6'] : []), 'addr', 'add', cidr, 'dev', dev, ...(v6 ? ['nodad'] : [])]);
  }

  async up(ns: string, dev: string): Promise<void> {
    await this.must(ns, ['ip', 'link', 'set', dev, 'up']);
  }

  async bridge(ns: string, name: string): Promise<void> {
    await this.must(ns, ['ip', 'link', 'add', name, 'type', 'bridge']);
    await this.must(ns, ['ip', 'link', 'set', name, 'addrgenmode', 'none']);
    await this.up(ns, name);
  }

  async attach(ns: string, dev: string, bridge: string): Promise<void> {
    await this.must(ns, ['ip', 'link', 'set', dev, 'master', bridge]);
  }

  /** The argv that runs `argv` inside `ns` (or as is when ns is undefined). */
  argv(ns: string | undefined, argv: readonly string[]): string[] {
    return ns ? ['ip', 'netns', 'exec', ns, ...argv] : [...argv];
  }

  /** Runs to completion inside `ns`; never throws on an exit code. */
  exec(ns: string | undefined, argv: readonly string[], opts?: ExecOptions): Promise<Result> {
    return run(this.argv(ns, argv), opts);
  }

  /** Like exec, but throws with the command and what it said. */
  async must(ns: string | undefined, argv: readonly string[], opts?: ExecOptions): Promise<string> {
    const r = await this.exec(ns, argv, opts);
    if (r.code !== 0) throw new Error(`${ns ? `[${ns}] ` : ''}${argv.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
  }

  /** A long-lived process inside `ns`; stopped by cleanup(). */
  spawn(ns: string | undefined, label: string, argv: readonly string[], opts: ConstructorParameters<typeof Proc>[2] = {}): Proc {
    const p = new Proc(label, this.argv(ns, argv), opts);
    this.procs.push(p);
    return p;
  }

  /** Pids of every process whose network namespace is `ns`. */
  async pids(ns: string): Promise<number[]> {
    const r = await this.exec(undefined, ['ip', 'netns', 'pids', ns]);
    return r.stdout
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .filter((n) => n > 0 && n !== process.pid);
  }

  /**
   * Stops our processes (SIGTERM, then SIGKILL), kills whatever they left in
   * our namespaces (by pid), removes /etc/netns entries and the namespaces.
   * Safe to call twice; collects every error instead of stopping at the first.
   */
  async cleanup(): Promise<string[]> {
    const errors: string[] = [];
    await Promise.all(this.procs.splice(0).map((p) => p.stop('SIGTERM', 3_000).catch((e: Error) => errors.push(`${p.label}: ${e.message}`))));
    for (const ns of this.names) {
      for (const pid of await this.pids(ns)) killQuiet(pid);
    }
    for (const ns of this.names.splice(0)) {
      rmSync(`${NETNS_ETC}/${ns}`, { recursive: true, force: true });
      const r = await this.exec(undefined, ['ip', 'netns', 'del', ns]);
      if (r.code !== 0) errors.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
    }
    live.delete(this);
    removeEtcNetns();
    return errors;
  }

  /** Last resort at process exit, when nothing can be awaited. */
  cleanupSync(): void {
    for (const p of this.procs) if (p.pid !== undefined && p.running) killQuiet(p.pid);
    for (const ns of this.names) {
      try {
        const out = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
        for (const pid of out.split(/\s+/).filter(Boolean).map(Number)) if (pid > 0 && pid !== process.pid) killQuiet(pid);
      } catch {
        // namespace already gone
      }
      rmSync(`${NETNS_ETC}/${ns}`, { recursive: true, force: true });
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // best effort at exit
      }
    }
    this.names.length = 0;
    live.delete(this);
    removeEtcNetns();
  }
}

function killQuiet(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
