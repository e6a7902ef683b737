// Row 7: the meshlet process's own footprint. Idle RSS and CPU with its Envoy
// connected and ready (row 2's config), and the cold start split by phase:
//   - bare node: `node -e 0` spawn → exit;
//   - the phase probe (bench/probes/startup-phases.ts) runs meshlet run's steps
//     in order — modules, encoder table, config + snapshot, serving — and reports
//     when each ended, and, in a separate run with --expose-gc, the RSS each
//     keeps;
//   - the real thing: `meshlet run --no-envoy` spawn → "meshlet serving".
import { fileURLToPath } from 'node:url';
import { freshPorts, featureConfig, loopbackBlock } from '../lib/configs.js';
import { freePort } from '../lib/http.js';
import { cpuSeconds, rssMiB } from '../lib/machine.js';
import { launcher, MeshletRun } from '../lib/meshlet.js';
import { makePod, removePod, writeConfig, type BenchPod } from '../lib/pod.js';
import { probe, run, sleep } from '../lib/procs.js';
import { RowBuilder, type RowResult } from '../lib/result.js';
import { Cleanup, type Ctx } from './context.js';

const PROBE = fileURLToPath(new URL('../probes/startup-phases.js', import.meta.url));
const PHASES = ['node', 'builtins', 'log', 'meshlet modules', 'encoders', 'config', 'serving'] as const;
const MODULES: readonly string[] = ['builtins', 'log', 'meshlet modules'];

interface Mark {
  phase: (typeof PHASES)[number];
  at: number;
  rssMiB: number;
  heapMiB: number;
}

interface Idle {
  rss: number;
  cpuPct: number;
  envoyRss: number;
}

async function idle(ctx: Ctx, pod: BenchPod, snapshot = true): Promise<Idle> {
  const ports = await freshPorts();
  writeConfig(pod, featureConfig(pod, ports, loopbackBlock(), await freePort()));
  const m = new MeshletRun(pod.configPath, `http://127.0.0.1:${ports.debug}`, { envoy: ctx.envoy, snapshot });
  try {
    await m.waitReady();
    await sleep(ctx.size.idleSettleMs);
    const [c0, t0] = [cpuSeconds(m.pid), performance.now()];
    await sleep(ctx.size.idleCpuMs);
    const cpuPct = ((cpuSeconds(m.pid) - c0) / ((performance.now() - t0) / 1000)) * 100;
    return { rss: rssMiB(m.pid), cpuPct, envoyRss: rssMiB(m.envoyPid) };
  } finally {
    await m.stop();
  }
}

async function phases(configPath: string, gc: boolean): Promise<Mark[]> {
  const l = launcher();
  return (
    await probe<{ marks: Mark[] }>([...l.nodeArgs, ...(gc ? ['--expose-gc'] : []), PROBE, configPath], 60_000, {
      env: { ...process.env, ...l.env, MESHLET_V8_FLAGS: l.v8Flags },
    })
  ).marks;
}

async function bareNode(): Promise<number> {
  const t = performance.now();
  await run([process.execPath, '-e', '0']);
  return performance.now() - t;
}

async function servingNoEnvoy(ctx: Ctx, pod: BenchPod, snapshot = true): Promise<number> {
  const ports = await freshPorts();
  writeConfig(pod, featureConfig(pod, ports, loopbackBlock(), await freePort()));
  const m = new MeshletRun(pod.configPath, `http://127.0.0.1:${ports.debug}`, { envoy: ctx.envoy, args: ['--no-envoy'], snapshot });
  try {
    const { line } = await m.proc.waitLine('meshlet serving', (l) => l.json?.['msg'] === 'meshlet serving', 0, 30_000);
    return line.t - m.proc.spawnedAt;
  } finally {
    await m.stop();
  }
}

export async function footprintRow(ctx: Ctx): Promise<RowResult> {
  const row = new RowBuilder('footprint', '7. meshlet footprint and cold start');
  const started = performance.now();
  const cleanup = new Cleanup();
  try {
    const pod = await makePod('footprint');
    cleanup.add(() => removePod(pod));
    const idles: Idle[] = [];
    const plainIdles: Idle[] = [];
    for (let i = 0; i < ctx.size.footprintReps; i++) {
      idles.push(await idle(ctx, pod));
      plainIdles.push(await idle(ctx, pod, false));
    }
    const rss = row.metric(
      'idle meshlet RSS (Envoy connected, ready)',
      'MiB',
      idles.map((i) => i.rss),
    );
    const cpu = row.metric(
      `idle meshlet CPU over ${ctx.size.idleCpuMs / 1000} s`,
      '%',
      idles.map((i) => i.cpuPct),
    );
    row.metric(
      'idle meshlet RSS without the startup snapshot (dist/src/cli.js, as `npx meshlet`)',
      'MiB',
      plainIdles.map((i) => i.rss),
    );
    row.metric(
      'idle Envoy RSS (for reference)',
      'MiB',
      idles.map((i) => i.envoyRss),
    );

    const bare: number[] = [];
    const serving: number[] = [];
    const plainServing: number[] = [];
    const timing: Mark[][] = [];
    // The probe needs a config file; the last idle run left a valid one.
    for (let i = 0; i < ctx.size.phaseReps; i++) {
      bare.push(await bareNode());
      timing.push(await phases(pod.configPath, false));
      serving.push(await servingNoEnvoy(ctx, pod));
      plainServing.push(await servingNoEnvoy(ctx, pod, false));
    }
    const memory = await phases(pod.configPath, true);
    row.metric('bare node: `node -e 0` spawn → exit', 'ms', bare);
    row.metric('meshlet run --no-envoy: spawn → "meshlet serving"', 'ms', serving);
    row.metric('  the same without the startup snapshot (dist/src/cli.js)', 'ms', plainServing);
    const at = (ph: (typeof PHASES)[number], marks: Mark[]): number => marks.find((m) => m.phase === ph)?.at ?? Number.NaN;
    const durations = new Map<string, number>();
    PHASES.forEach((ph, k) => {
      const prev = PHASES[k - 1];
      const samples = timing.map((marks) => at(ph, marks) - (prev ? at(prev, marks) : 0));
      const label =
        ph === 'node' ? 'phase: node bootstrap (process start → first line of script)' : MODULES.includes(ph) ? `phase: modules: ${ph}` : `phase: ${ph}`;
      durations.set(ph, row.metric(label, 'ms', samples).median);
    });
    row.metric(
      'phase: modules, all',
      'ms',
      timing.map((marks) => at('meshlet modules', marks) - at('node', marks)),
    );
    PHASES.forEach((ph, k) => {
      const mark = memory.find((m) => m.phase === ph);
      const prev = k > 0 ? memory.find((m) => m.phase === PHASES[k - 1]) : undefined;
      row.metric(`RSS kept after ${ph} (after GC)${prev ? `, +${((mark?.rssMiB ?? NaN) - prev.rssMiB).toFixed(1)} MiB` : ''}`, 'MiB', [mark?.rssMiB ?? NaN]);
    });
    const costliest = [...durations].filter(([p]) => p !== 'node').sort((a, b) => b[1] - a[1])[0];
    const modulesMs = [...durations].filter(([p]) => MODULES.includes(p)).reduce((n, [, v]) => n + v, 0);
    const memDeltas = PHASES.slice(1).map(
      (ph, k) => [ph, (memory.find((m) => m.phase === ph)?.rssMiB ?? NaN) - (memory.find((m) => m.phase === PHASES[k])?.rssMiB ?? NaN)] as const,
    );
    const heaviest = [...memDeltas].sort((a, b) => b[1] - a[1])[0];
    row.target(
      'idle sidecar RSS (meshlet only)',
      '≤ 60 MB',
      `${rss.median.toFixed(1)} MiB (max ${rss.max.toFixed(1)}); idle CPU ${cpu.median.toFixed(2)} %; largest phase: ${heaviest?.[0] ?? '?'} +${heaviest?.[1].toFixed(1) ?? '?'} MiB`,
      rss.max <= 60,
    );
    row.note(
      `Slowest single start phase (median): ${costliest?.[0] ?? '?'}, ${costliest?.[1].toFixed(0) ?? '?'} ms; all module loading together ${modulesMs.toFixed(0)} ms. Modules are imported in the order listed (node's net and http, meshlet's logger, then the rest of the run path), so a phase's figure excludes what an earlier one already loaded. meshlet runs as the image starts it, from the startup snapshot (scripts/install-snapshot.sh), unless a line says otherwise. Phase probe (module phases as without the snapshot): bench/probes/startup-phases.ts imports what \`meshlet run\` imports, forces the generated encoder table's parse (lazy in meshlet: the first encode), builds config, certs and the xDS snapshot, then starts a Meshlet with --no-envoy; times are ms since process start. Idle CPU from /proc/PID/stat (utime + stime) over the window after a ${ctx.size.idleSettleMs / 1000} s settle.`,
    );
    return row.result((performance.now() - started) / 1000);
  } catch (err) {
    return row.result((performance.now() - started) / 1000, (err as Error).message);
  } finally {
    await cleanup.run();
  }
}
