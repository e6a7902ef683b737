// A throwaway network namespace for real-Envoy tests: its own loopback,
// addresses and iptables, so nothing touches the host. Processes started in it
// are tracked by pid and killed before the namespace is deleted.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** Root with `ip` available; otherwise the namespace tests are skipped. */
export function canUseNetns(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let counter = 0;

export class Netns {
  private readonly children: ChildProcess[] = [];

  private constructor(readonly name: string) {}

  /** Creates `meshlet-<tag>-<pid>-<n>` with lo up. */
  static create(tag: string): Netns {
    const ns = new Netns(`meshlet-${tag}-${process.pid}-${counter++}`);
    execFileSync('ip', ['netns', 'add', ns.name]);
    ns.ip(['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** `ip -n <ns> …` */
  ip(args: string[]): void {
    execFileSync('ip', ['-n', this.name, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** Runs a command inside the namespace and returns its stdout. */
  exec(cmd: string, args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.name, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** `ip netns exec` execs the command, so the child's pid is the command's own. */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
    this.children.push(child);
    return child;
  }

  /** Kills what it started, by pid, then deletes the namespace. Safe to call twice. */
  destroy(): void {
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
}
