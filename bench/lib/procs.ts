// Child processes for the benchmarks: every line they print is kept with the
// time it arrived (performance.now(), the harness's clock), so a log line is
// an event we can time without polling. Every pid we start, and every Envoy
// pid meshlet reports, is registered and killed at exit even when a row
// throws, so an aborted run never leaves a proxy behind.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import readline from 'node:readline';

export interface Line {
  /** performance.now() when the line reached the harness. */
  t: number;
  text: string;
  stream: 'out' | 'err';
  /** The parsed JSON object, for JSON log lines. */
  json?: Record<string, unknown>;
}

const live = new Set<number>();
let hooked = false;

/** Registers a pid (ours, or one a child started) to kill at exit. */
export function trackPid(pid: number | undefined): void {
  if (pid === undefined || pid <= 0) return;
  live.add(pid);
  if (hooked) return;
  hooked = true;
  process.once('exit', killAllSync);
}

export function untrackPid(pid: number | undefined): void {
  if (pid !== undefined) live.delete(pid);
}

export function killAllSync(): void {
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

export function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class Proc {
  readonly lines: Line[] = [];
  readonly child: ChildProcess;
  /** performance.now() just before spawn(). */
  readonly spawnedAt: number;
  readonly exited: Promise<number | null>;
  /** stdout and stderr closed (a grandchild holding them open delays this). */
  readonly closed: Promise<void>;
  private readonly waiters = new Set<() => void>();
  private readonly lineHooks: ((l: Line) => void)[] = [];

  constructor(
    readonly name: string,
    argv: readonly string[],
    opts: SpawnOptions = {},
  ) {
    const [cmd = '', ...args] = argv;
    this.spawnedAt = performance.now();
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    trackPid(this.child.pid);
    for (const [stream, kind] of [
      [this.child.stdout, 'out'],
      [this.child.stderr, 'err'],
    ] as const) {
      if (stream) readline.createInterface({ input: stream }).on('line', (text) => this.push(text, kind));
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code) => {
        untrackPid(this.child.pid);
        resolve(code);
        for (const w of this.waiters) w();
      });
      this.child.once('error', () => resolve(null));
    });
    this.closed = new Promise((resolve) => this.child.once('close', () => resolve()));
  }

  onLine(hook: (l: Line) => void): void {
    this.lineHooks.push(hook);
    for (const l of this.lines) hook(l);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private push(text: string, stream: Line['stream']): void {
    const line: Line = { t: performance.now(), text, stream };
    if (text.startsWith('{')) {
      try {
        line.json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        /* not JSON after all */
      }
    }
    this.lines.push(line);
    for (const h of this.lineHooks) h(line);
    for (const w of this.waiters) w();
  }

  /** The first line at index >= from that matches, waiting up to timeoutMs. */
  waitLine(what: string, match: (l: Line) => boolean, from = 0, timeoutMs = 10_000): Promise<{ line: Line; index: number }> {
    return new Promise((resolve, reject) => {
      let next = from;
      const check = (): boolean => {
        for (; next < this.lines.length; next++) {
          const line = this.lines[next];
          if (line && match(line)) {
            done();
            resolve({ line, index: next });
            return true;
          }
        }
        if (!this.running) {
          done();
          reject(new Error(`${this.name} exited before ${what}; last lines:\n${this.tail()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; last lines:\n${this.tail()}`));
      }, timeoutMs);
      const waiter = (): void => void check();
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
      check();
    });
  }

  tail(n = 8): string {
    return this.lines
      .slice(-n)
      .map((l) => `  ${l.text.slice(0, 400)}`)
      .join('\n');
  }

  /** signal, then SIGKILL after graceMs. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<number | null> {
    if (this.running) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** Runs a command to completion with a deadline; resolves with its output, never rejects on exit codes. */
export async function run(
  argv: readonly string[],
  timeoutMs = 30_000,
  opts: SpawnOptions = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = new Proc(argv[0] ?? '', argv, opts);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  await Promise.race([p.closed, sleep(1_000)]);
  const text = (s: Line['stream']): string =>
    p.lines
      .filter((l) => l.stream === s)
      .map((l) => `${l.text}\n`)
      .join('');
  return { code, stdout: text('out'), stderr: text('err') };
}

/** Like run(), but throws with the output when the command fails. */
export async function must(argv: readonly string[], timeoutMs = 30_000): Promise<string> {
  const r = await run(argv, timeoutMs);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${(r.stderr + r.stdout).slice(-800)}`);
  return r.stdout;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs a probe script (a node process) and parses the JSON it prints last. */
export async function probe<T>(argv: readonly string[], timeoutMs = 60_000, opts: SpawnOptions = {}): Promise<T> {
  const r = await run([process.execPath, ...argv], timeoutMs, opts);
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.code !== 0 || !last.startsWith('{')) throw new Error(`probe ${argv.join(' ')} exited ${r.code}: ${r.stderr.slice(-1500)}`);
  return JSON.parse(last) as T;
}
