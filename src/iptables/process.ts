// Long-running helper processes (the verification probe), behind an
// interface so tests can start them inside a network namespace.
const { spawn } = process.getBuiltinModule('node:child_process');
const { createInterface } = process.getBuiltinModule('node:readline');

export interface StartedProcess {
  /** Every stdout line so far. */
  readonly lines: readonly string[];
  /** Resolves with the first line (past or future) that matches, or rejects at the deadline or on exit. */
  waitFor(match: (line: string) => boolean, timeoutMs: number): Promise<string>;
  /** Closes stdin (the probe exits on that), then kills after a grace period. */
  stop(): Promise<void>;
  readonly stderr: () => string;
}

export interface ProcessStarter {
  start(cmd: string, args: readonly string[]): StartedProcess;
}

export const spawnStarter: ProcessStarter = {
  start(cmd, args) {
    const child = spawn(cmd, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let err = '';
    let exited = false;
    const waiters = new Set<() => void>();
    const notify = (): void => waiters.forEach((w) => w());
    createInterface({ input: child.stdout }).on('line', (l) => {
      lines.push(l);
      notify();
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => {
      err += e.message;
      exited = true;
      notify();
    });
    const closed = new Promise<void>((resolve) =>
      child.on('close', () => {
        exited = true;
        notify();
        resolve();
      }),
    );
    child.stdin.on('error', () => undefined);
    return {
      lines,
      stderr: () => err,
      waitFor(match, timeoutMs) {
        return new Promise((resolve, reject) => {
          const check = (): void => {
            const hit = lines.find(match);
            if (hit !== undefined) done(() => resolve(hit));
            else if (exited) done(() => reject(new Error(`${cmd} exited: ${err.trim() || lines.join(' ')}`)));
          };
          const timer = setTimeout(() => done(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${cmd}`))), timeoutMs);
          const done = (f: () => void): void => {
            clearTimeout(timer);
            waiters.delete(check);
            f();
          };
          waiters.add(check);
          check();
        });
      },
      async stop() {
        child.stdin.end();
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await closed;
        clearTimeout(timer);
      },
    };
  },
};
