// Child processes for the mesh lab: one-shot commands with a deadline, and
// long-lived processes whose output is kept (bounded) and can be waited on.
// Nothing here throws on a non-zero exit; callers decide.
import type { ChildProcess } from 'node:child_process';
const { execFile, spawn } = process.getBuiltinModule('node:child_process');
const { createInterface } = process.getBuiltinModule('node:readline');

export interface Result {
  /** Exit code; 127 when the program does not exist, 124 on timeout. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
}

export function run(argv: readonly string[], opts: ExecOptions = {}): Promise<Result> {
  const [cmd = '', ...args] = argv;
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 30_000, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, encoding: 'utf8', env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr });
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
        if (e.code === 'ENOENT') return resolve({ code: 127, stdout, stderr: `${cmd}: command not found` });
        if (e.killed) return resolve({ code: 124, stdout, stderr: `${stderr}${cmd}: timed out after ${opts.timeoutMs ?? 30_000} ms` });
        resolve({ code: typeof e.code === 'number' ? e.code : 1, stdout, stderr: stderr || e.message });
      },
    );
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

const MAX_OUTPUT = 256 * 1024;

/** A long-lived child: stdout lines are kept for waitFor (the lab's load is bounded), all output (capped) for diagnostics. */
export class Proc {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private out = '';
  private done = false;
  private readonly waiters = new Set<() => void>();
  private readonly child: ChildProcess;

  constructor(
    readonly label: string,
    argv: readonly string[],
    opts: { env?: NodeJS.ProcessEnv; cwd?: string; onLine?: (line: string) => void; stderrLines?: boolean } = {},
  ) {
    const [cmd = '', ...args] = argv;
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env, ...(opts.cwd ? { cwd: opts.cwd } : {}) });
    this.child.stdin?.on('error', () => undefined);
    const keep = (s: string): void => {
      this.out += s;
      if (this.out.length > MAX_OUTPUT) this.out = this.out.slice(-MAX_OUTPUT);
    };
    const onLine = (l: string): void => {
      this.lines.push(l);
      keep(`${l}\n`);
      opts.onLine?.(l);
      this.notify();
    };
    if (this.child.stdout) createInterface({ input: this.child.stdout }).on('line', onLine);
    if (opts.stderrLines && this.child.stderr) createInterface({ input: this.child.stderr }).on('line', onLine);
    else this.child.stderr?.on('data', (d: Buffer) => keep(d.toString()));
    this.child.on('error', (e) => keep(`spawn error: ${e.message}\n`));
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code, signal) => {
        this.done = true;
        if (signal) keep(`[killed by ${signal}]\n`);
        this.notify();
        resolve(code);
      }),
    );
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.done;
  }

  /** Everything the process printed (stdout and stderr, last 256 KiB). */
  output(): string {
    return this.out;
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** The first stdout line (past or future) that matches; rejects on exit or at the deadline. */
  waitFor(match: (line: string) => boolean, timeoutMs: number, what = 'a matching line'): Promise<string> {
    return new Promise((resolve, reject) => {
      let seen = 0;
      const check = (): void => {
        for (; seen < this.lines.length; seen++) {
          const l = this.lines[seen] ?? '';
          if (match(l)) return finish(() => resolve(l));
        }
        if (this.done) finish(() => reject(new Error(`${this.label} exited before ${what}:\n${tail(this.out)}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`${this.label}: no ${what} within ${timeoutMs} ms:\n${tail(this.out)}`))), timeoutMs);
      const finish = (f: () => void): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        f();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Writes to the process's stdin (request/answer helpers read it line by line). */
  write(text: string): void {
    if (!this.done) this.child.stdin?.write(text);
  }

  /** Sends a signal without waiting (e.g. SIGKILL to simulate a crash). */
  signal(sig: NodeJS.Signals): void {
    if (!this.done) this.child.kill(sig);
  }

  /** Closes stdin (the lab's helpers exit on that), then SIGKILL after graceMs. */
  async close(graceMs = 10_000): Promise<void> {
    if (this.done) return;
    this.child.stdin?.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGTERM (or `sig`), then SIGKILL after graceMs. Resolves once it is gone. */
  async stop(sig: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
    if (this.done) return;
    this.child.stdin?.end();
    this.child.kill(sig);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** `argv` run as `uid` (gid the same, no supplementary groups) through setpriv; as is when uid is undefined. */
export function asUid(uid: number | undefined, argv: readonly string[]): string[] {
  return uid === undefined ? [...argv] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', ...argv];
}

export function tail(text: string, lines = 40): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
