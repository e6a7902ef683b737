// wrk runs and the figures we read from its report.
import { run } from './procs.js';

export interface WrkResult {
  requestsPerSec: number;
  mbPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Socket errors plus non-2xx answers. */
  errors: number;
}

function durationMs(text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text ?? '');
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60_000;
}

function sizeMB(text: string | undefined): number {
  const m = /^([\d.]+)([KMG]?B)$/.exec(text ?? '');
  if (!m) return Number.NaN;
  const scale: Record<string, number> = { B: 1 / 2 ** 20, KB: 1 / 1024, MB: 1, GB: 1024 };
  return Number(m[1]) * (scale[m[2] ?? 'B'] ?? Number.NaN);
}

export function parseWrk(out: string): WrkResult {
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    requestsPerSec: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    mbPerSec: sizeMB(/Transfer\/sec:\s+(\S+)/.exec(out)?.[1]),
    p50Ms: durationMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1]),
    p99Ms: durationMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1]),
    errors: (socketErrors ? socketErrors.slice(1).reduce((n, v) => n + Number(v), 0) : 0) + Number(non2xx?.[1] ?? 0),
  };
}

export interface WrkOptions {
  ns: string;
  url: string;
  seconds: number;
  connections: number;
}

export async function wrk(o: WrkOptions): Promise<WrkResult> {
  const argv = ['ip', 'netns', 'exec', o.ns, 'wrk', '-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--latency', o.url];
  const r = await run(argv, (o.seconds + 30) * 1000);
  if (r.code !== 0) throw new Error(`wrk ${o.url} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return parseWrk(r.stdout);
}
