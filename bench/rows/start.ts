// Row 2: from `meshlet run` process start to /ready 200, against the same
// Envoy started on the equivalent static config until it is LIVE and a
// listener accepts. Runs alternate (static, meshlet, meshlet, static, …) so
// drift on a noisy machine hits both sides alike. meshlet's log lines split
// its time into phases.
import { freshPorts, featureConfig, loopbackBlock } from '../lib/configs.js';
import { timeStaticStart, writeStaticBootstrap } from '../lib/envoy.js';
import { freePort } from '../lib/http.js';
import { MeshletRun, msg } from '../lib/meshlet.js';
import { makePod, removePod, writeConfig, type BenchPod } from '../lib/pod.js';
import { ratio, summarize } from '../lib/stats.js';
import { RowBuilder, type RowResult } from '../lib/result.js';
import { Cleanup, ms, x, type Ctx } from './context.js';

interface MeshletStart {
  ready: number;
  listening: number;
  envoyStarted: number;
  streamOpened: number;
  lastAck: number;
}

async function staticStart(ctx: Ctx, pod: BenchPod, i: number): Promise<number> {
  const ports = await freshPorts();
  const routePort = await freePort();
  const block = loopbackBlock();
  const file = `${pod.dir}/static-${i}.yaml`;
  writeConfig(pod, featureConfig(pod, ports, block, routePort), file);
  const bootstrap = `${pod.dir}/static-${i}.json`;
  await writeStaticBootstrap(file, bootstrap);
  return timeStaticStart(ctx.envoy, bootstrap, { host: `127.${block}.0.1`, port: routePort }, { everyMs: 5, timeoutMs: 30_000, requestMs: 1_000 });
}

/**
 * The floor of any start with a control plane: `meshlet run --no-envoy` is
 * already serving the same config (its xDS socket bound, its snapshot built,
 * everything loaded), and only then is Envoy spawned on the ADS bootstrap
 * meshlet wrote, with the supervisor's argv, timed as the static Envoy is
 * (spawn → LIVE and a listener accepts). What this costs over the static
 * Envoy is the dynamic config itself (the ADS stream, CDS, SDS and LDS,
 * warming); what meshlet run costs over this is meshlet's own start.
 */
async function floorStart(ctx: Ctx, pod: BenchPod): Promise<number> {
  const ports = await freshPorts();
  const routePort = await freePort();
  const block = loopbackBlock();
  writeConfig(pod, featureConfig(pod, ports, block, routePort));
  const m = new MeshletRun(pod.configPath, `http://127.0.0.1:${ports.debug}`, { envoy: ctx.envoy, args: ['--no-envoy'] });
  try {
    await m.proc.waitLine('meshlet serving (--no-envoy)', (l) => msg(l) === 'meshlet serving', 0, 30_000);
    return await timeStaticStart(
      ctx.envoy,
      `${pod.dir}/run/envoy.json`,
      { host: `127.${block}.0.1`, port: routePort },
      { everyMs: 5, timeoutMs: 30_000, requestMs: 1_000 },
    );
  } finally {
    await m.stop();
  }
}

async function meshletStart(ctx: Ctx, pod: BenchPod, snapshot = true, launcher = true): Promise<MeshletStart> {
  const ports = await freshPorts();
  writeConfig(pod, featureConfig(pod, ports, loopbackBlock(), await freePort()));
  const m = new MeshletRun(pod.configPath, `http://127.0.0.1:${ports.debug}`, { envoy: ctx.envoy, snapshot, launcher });
  try {
    const readyAt = await m.waitReady();
    const ready = readyAt - m.proc.spawnedAt;
    const lastAck = Math.max(...m.proc.lines.filter((l) => msg(l) === 'xDS ACK' && l.t <= readyAt).map((l) => l.t)) - m.proc.spawnedAt;
    return { ready, listening: m.mark('xDS server listening'), envoyStarted: m.mark('envoy started'), streamOpened: m.mark('xDS stream opened'), lastAck };
  } finally {
    await m.stop();
  }
}

export async function startRow(ctx: Ctx): Promise<RowResult> {
  const row = new RowBuilder('start', '2. Start to ready');
  const started = performance.now();
  const cleanup = new Cleanup();
  try {
    const pod = await makePod('start');
    cleanup.add(() => removePod(pod));
    // Untimed warm-up of both: the first start pages the 100 MB Envoy binary in.
    if (ctx.size.warmUp) {
      await staticStart(ctx, pod, -1);
      await meshletStart(ctx, pod);
      await meshletStart(ctx, pod, false);
      await meshletStart(ctx, pod, true, false);
      await floorStart(ctx, pod);
    }
    const stat: number[] = [];
    const mesh: MeshletStart[] = [];
    const floor: number[] = [];
    const plain: number[] = [];
    const noLauncher: number[] = [];
    for (let i = 0; i < ctx.size.startReps; i++) {
      // The five kinds take turns, in an order that changes every round, so drift hits each alike.
      const kinds = [
        async () => void stat.push(await staticStart(ctx, pod, i)),
        async () => void mesh.push(await meshletStart(ctx, pod)),
        async () => void floor.push(await floorStart(ctx, pod)),
        async () => void plain.push((await meshletStart(ctx, pod, false)).ready),
        async () => void noLauncher.push((await meshletStart(ctx, pod, true, false)).ready),
      ];
      for (let k = 0; k < kinds.length; k++) await kinds[(i + k) % kinds.length]?.();
      ctx.log(
        `start ${i + 1}/${ctx.size.startReps}: static ${ms(stat.at(-1) ?? NaN)}, meshlet ${ms(mesh.at(-1)?.ready ?? NaN)}, floor ${ms(floor.at(-1) ?? NaN)}, plain ${ms(plain.at(-1) ?? NaN)}, no launcher ${ms(noLauncher.at(-1) ?? NaN)}`,
      );
    }
    const s = row.metric('static Envoy: spawn → LIVE and a listener accepts', 'ms', stat);
    const m = row.metric(
      'meshlet run: spawn → /ready 200',
      'ms',
      mesh.map((r) => r.ready),
    );
    row.metric(
      "  phase: node start, config, certificate files, bootstrap → the launcher's Envoy adopted (it was spawned before node)",
      'ms',
      mesh.map((r) => r.envoyStarted),
    );
    row.metric(
      '  phase: Envoy adopted → xDS socket listening (meshlet, while Envoy boots)',
      'ms',
      mesh.map((r) => r.listening - r.envoyStarted),
    );
    row.metric(
      '  phase: Envoy adopted → its ADS stream opened',
      'ms',
      mesh.map((r) => r.streamOpened - r.envoyStarted),
    );
    row.metric(
      '  phase: ADS stream opened → last ACK',
      'ms',
      mesh.map((r) => r.lastAck - r.streamOpened),
    );
    row.metric(
      '  phase: last ACK → /ready 200 seen',
      'ms',
      mesh.map((r) => r.ready - r.lastAck),
    );
    const n = row.metric('meshlet run from the startup snapshot without the launcher (node spawns Envoy): spawn → /ready 200', 'ms', noLauncher);
    const p = row.metric('meshlet run without the startup snapshot (dist/src/cli.js, as `npx meshlet`): spawn → /ready 200', 'ms', plain);
    row.noteLargest('phase:', "phase of meshlet's start (measured from its log lines)");
    const f = row.metric('floor: Envoy on the ADS bootstrap, the xDS server already serving: spawn → LIVE and a listener accepts', 'ms', floor);
    const r = row.ratio('meshlet start / static start', ratio(m.median, s.median), 'median / median');
    row.ratio('floor / static start (what the dynamic config costs Envoy)', ratio(f.median, s.median), 'median / median');
    row.ratio('meshlet start / floor (what meshlet adds)', ratio(m.median, f.median), 'median / median');
    row.ratio('meshlet start / the same without the launcher', ratio(m.median, n.median), 'median / median');
    row.ratio('the same without the launcher / static start', ratio(n.median, s.median), 'median / median');
    row.ratio('meshlet start / the same without the startup snapshot', ratio(m.median, p.median), 'median / median');
    // Each round starts both within a second or two, so this ratio sees less of the machine's drift than the medians do.
    const paired = summarize(mesh.map((r, i) => ratio(r.ready, stat[i] ?? Number.NaN)));
    row.ratio('meshlet start / static start, round by round', paired.median, `median of ${paired.n} rounds, range ${x(paired.min)}-${x(paired.max)}`);
    row.target('start to ready', '≤ 2× static (aim 1.2×)', `${x(r)} (${ms(m.median)} vs ${ms(s.median)})`, r <= 2);
    row.note(
      "Config: tproxy ingress (3 ports, one with a SAN allow-list), 2 egress routes with a port, 1 portless route, capture with exclusions; remotes are IP literals. Static side: `meshlet bootstrap --static` of the same config, started with the supervisor's exact argv (setpriv to uid 1337, CAP_NET_ADMIN only), ready when admin /ready is 200 and a route listener accepts. Both polled every 5 ms. --skip-iptables-check on meshlet: no `meshlet init` runs in this row. Floor: `meshlet run --no-envoy` on the same config is serving first, then Envoy is spawned on the ADS bootstrap it wrote, timed as the static one. meshlet starts as the image starts it: the launcher (dist/meshlet, scripts/install-snapshot.sh, src/envoy/early.ts) starts Envoy on a FIFO, then node from the startup snapshot, which adopts that Envoy and writes its bootstrap into the FIFO; the line without the launcher starts node from the snapshot directly (node spawns Envoy, as before the launcher did); the plain line starts dist/src/cli.js, without snapshot or launcher. The five kinds take turns.",
    );
    return row.result((performance.now() - started) / 1000);
  } catch (err) {
    return row.result((performance.now() - started) / 1000, (err as Error).message);
  } finally {
    await cleanup.run();
  }
}
