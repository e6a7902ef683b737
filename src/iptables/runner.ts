// The one seam through which the iptables module touches the system. Tests
// and the verifier wrap it (for example to run inside a network namespace).
const { execFile } = process.getBuiltinModule('node:child_process');

export interface CommandResult {
  /** Exit code; 127 when the program does not exist. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the program's standard input (iptables-restore reads rules here). */
  input?: string;
  timeoutMs?: number;
}

export interface CommandRunner {
  /** Runs a program to completion. Never throws for a non-zero exit. */
  run(cmd: string, args: readonly string[], opts?: RunOptions): Promise<CommandResult>;
}

/** The real runner: execFile without a shell, rules through stdin. */
export const execFileRunner: CommandRunner = {
  run(cmd, args, opts = {}) {
    return new Promise((resolve) => {
      const child = execFile(cmd, [...args], { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr });
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
        if (e.code === 'ENOENT') return resolve({ code: 127, stdout, stderr: `${cmd}: command not found` });
        const code = typeof e.code === 'number' ? e.code : 1;
        resolve({ code, stdout, stderr: e.killed ? `${stderr}${cmd}: timed out` : stderr || e.message });
      });
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(opts.input ?? '');
    });
  },
};

/** One line for messages: the program, its arguments and what it said. */
export function describeFailure(cmd: string, args: readonly string[], r: CommandResult): string {
  const said = (r.stderr || r.stdout).trim().replace(/\s+/g, ' ');
  return `\`${[cmd, ...args].join(' ')}\` exited ${r.code}${said ? `: ${said}` : ''}`;
}
