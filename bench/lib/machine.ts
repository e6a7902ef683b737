// Where the figures came from: they only compare within one run on one machine.
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Machine {
  cores: number;
  cpu: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  envoy: string;
  /** 1-minute load average when the run started; other work on the machine skews every figure. */
  loadAvg: number;
}

export function describeMachine(envoy: string): Machine {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    node: process.version,
    envoy,
    loadAvg: Math.round((os.loadavg()[0] ?? Number.NaN) * 100) / 100,
  };
}

/** Resident set size of a pid in MiB (VmRSS), NaN when the process is gone. */
export function rssMiB(pid: number | undefined): number {
  return statusKiB(pid, 'VmRSS') / 1024;
}

/** Peak resident set size (VmHWM) in MiB. */
export function peakRssMiB(pid: number | undefined): number {
  return statusKiB(pid, 'VmHWM') / 1024;
}

function statusKiB(pid: number | undefined, field: string): number {
  if (pid === undefined) return Number.NaN;
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds (user + system) a pid has used; NaN when it is gone. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself contain spaces: utime and stime are the 12th and 13th.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** USER_HZ, 100 on every Linux architecture we run on. */
const CLOCK_TICKS = 100;
