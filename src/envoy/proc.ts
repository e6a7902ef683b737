// What /proc says of a process: its stat fields, its argv and, for a child
// that has exited but is not yet reaped, its wait status.
const { readFileSync } = process.getBuiltinModule('node:fs');
const { constants } = process.getBuiltinModule('node:os');

/**
 * The fields of /proc/PID/stat from field 3 (the state) on, so field N is at
 * index N - 3; undefined when there is no such process. The command (field 2)
 * may hold spaces and parentheses; the fields after its last `)` are plain.
 */
export function statFields(pid: number, procRoot = '/proc'): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(`${procRoot}/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  return text
    .slice(text.lastIndexOf(')') + 2)
    .trim()
    .split(' ');
}

/** The parent's pid (field 4); undefined when there is no such process. */
export function parentOf(pid: number): number | undefined {
  const f = statFields(pid);
  return f?.[1] === undefined ? undefined : Number(f[1]);
}

/** A process's argv from /proc/PID/cmdline; undefined when it is gone or has exited (a zombie's is empty). */
export function commandLineOf(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (text === '') return undefined;
    return (text.endsWith('\0') ? text.slice(0, -1) : text).split('\0');
  } catch {
    return undefined;
  }
}

/**
 * How a child that node did not spawn ended, read from /proc while it is a
 * zombie (field 52, the wait status); undefined while it runs. A process
 * gone from /proc (reaped elsewhere) counts as ended, without a status.
 */
export function exitOf(pid: number): { code: number | null; signal: NodeJS.Signals | null } | undefined {
  const f = statFields(pid);
  if (!f) return { code: null, signal: null };
  if (f[0] !== 'Z' && f[0] !== 'X') return undefined;
  const status = Number(f[49] ?? 'NaN');
  if (!Number.isInteger(status)) return { code: null, signal: null };
  const sig = status & 0x7f;
  if (sig === 0) return { code: (status >> 8) & 0xff, signal: null };
  const name = Object.entries(constants.signals).find(([, n]) => n === sig)?.[0] as NodeJS.Signals | undefined;
  return { code: null, signal: name ?? null };
}

/** The four ids (real, effective, saved, filesystem) on a /proc/PID/status line, `Uid:` or `Gid:`. */
export function idsOf(status: string, key: 'Uid' | 'Gid'): number[] {
  const line = status.split('\n').find((l) => l.startsWith(`${key}:`));
  return (
    line
      ?.slice(key.length + 1)
      .trim()
      .split(/\s+/)
      .map(Number) ?? []
  );
}
