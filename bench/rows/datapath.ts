// Row 5: the data path between two pods (network namespaces on a veth pair).
// Client pod A dials its egress route; A's Envoy originates mTLS to pod B's
// mapped listener; B's Envoy forwards to the app on loopback. Three variants
// run side by side on different ports and are measured in interleaved rounds:
//   direct  — no mesh: A dials the app in B;
//   static  — the same two Envoys on `meshlet bootstrap --static` configs;
//   meshlet — `meshlet run` in each pod, Envoy configured over xDS.
// A fourth pair, classic, is the static pair with every TLS context
// rewritten to offer X25519 only (bench-only, bench/lib/handshake.ts): its
// new-connection latency and handshake bytes against the static pair's
// (X25519MLKEM768 chosen) price the post-quantum key exchange.
// Mapped ingress on both sides keeps the comparison apples-to-apples without
// iptables (tproxy would need `meshlet init` rules for one variant only).
import { fileURLToPath } from 'node:url';
import { baseConfig, makePod, removePod, writeConfig, type BenchPod, type Ports } from '../lib/pod.js';
import type { RawConfigInput } from '../../src/config/schema.js';
import { mappedConfig } from '../lib/configs.js';
import { startStaticEnvoy, writeStaticBootstrap } from '../lib/envoy.js';
import { CLI, MeshletRun } from '../lib/meshlet.js';
import { PodNetwork } from '../lib/netns.js';
import { must, Proc, run } from '../lib/procs.js';
import { RowBuilder, type RowResult } from '../lib/result.js';
import { median, ratio } from '../lib/stats.js';
import { wrk } from '../lib/wrk.js';
import { chosenGroups, handshakeBytes, overrideGroups, startCapture } from '../lib/handshake.js';
import { Cleanup, x, type Ctx } from './context.js';

const PROBES = fileURLToPath(new URL('../probes/', import.meta.url));
const APP_PORT = 8080;
const SERVER_SAN = 'server-b';
type Variant = 'direct' | 'static' | 'meshlet';
const VARIANTS: Variant[] = ['direct', 'static', 'meshlet'];

/** Inside a pod every variant has its own ports; the namespaces keep them off the host. */
const PORTS: Record<'static' | 'meshlet' | 'classic', Ports & { mapped: number; listenIp: string }> = {
  meshlet: { debug: 15020, inbound: 15006, outbound: 15001, portless: 15002, mapped: 18080, listenIp: '127.0.1.1' },
  static: { debug: 16020, inbound: 16006, outbound: 16001, portless: 16002, mapped: 18081, listenIp: '127.0.2.1' },
  classic: { debug: 17020, inbound: 17006, outbound: 17001, portless: 17002, mapped: 18082, listenIp: '127.0.3.1' },
};
/** Connections per pair in the handshake-bytes capture. */
const CAPTURED_CONNS = 20;

function clientConfig(pod: BenchPod, v: 'static' | 'meshlet' | 'classic', serverIp: string): RawConfigInput {
  const p = PORTS[v];
  return {
    ...baseConfig(pod, p),
    ingress: { mode: 'disabled' },
    egress: { routes: [{ name: 'server', listen: `${p.listenIp}:${APP_PORT}`, remote: `${serverIp}:${p.mapped}`, expectedSans: [SERVER_SAN] }] },
  };
}

interface Figures {
  rps: number[];
  mbps: number[];
  p99Ms: number[];
  connMs: number[];
  errors: number;
  errorText: string[];
}

async function connLatency(ns: string, host: string, count: number): Promise<{ samples: number[]; errors: string[] }> {
  const r = await run(['ip', 'netns', 'exec', ns, process.execPath, `${PROBES}conn-latency.js`, host, String(APP_PORT), String(count), '20000'], 40_000);
  if (r.code !== 0) throw new Error(`conn-latency exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as { samples: number[]; errors: string[] };
}

async function measure(ctx: Ctx, ns: string, host: string, f: Figures): Promise<void> {
  const seconds = ctx.size.wrkSeconds;
  const small = await wrk({ ns, url: `http://${host}:${APP_PORT}/`, seconds, connections: 32 });
  const bulk = ctx.size.datapathBulk ? await wrk({ ns, url: `http://${host}:${APP_PORT}/big`, seconds, connections: 8 }) : undefined;
  const lat = await connLatency(ns, host, ctx.size.latencyConns);
  f.rps.push(small.requestsPerSec);
  f.p99Ms.push(small.p99Ms);
  if (bulk) f.mbps.push(bulk.mbPerSec);
  f.connMs.push(...lat.samples);
  f.errors += small.errors + (bulk?.errors ?? 0) + lat.errors.length;
  f.errorText.push(...lat.errors.slice(0, 3));
}

/** Waits (bounded) until one request from `ns` through `host` gets the app's answer. */
async function reachable(ns: string, host: string): Promise<void> {
  const r = await run(['ip', 'netns', 'exec', ns, process.execPath, `${PROBES}conn-latency.js`, host, String(APP_PORT), '1', '30000', 'wait'], 40_000);
  const out = r.code === 0 ? (JSON.parse(r.stdout) as { samples: number[]; errors: string[] }) : undefined;
  if (out?.samples.length !== 1) throw new Error(`http://${host}:${APP_PORT}/ not reachable from ${ns}: ${out?.errors.at(-1) ?? r.stderr}`);
}

export async function datapathRow(ctx: Ctx): Promise<RowResult> {
  const row = new RowBuilder('datapath', '5. Data path between two pods');
  const started = performance.now();
  const cleanup = new Cleanup();
  try {
    const net = await PodNetwork.create('dp');
    cleanup.add(() => net.destroy());
    const podA = await makePod('dp-a', { sans: ['client-a'] });
    cleanup.add(() => removePod(podA));
    const podB = await makePod('dp-b', { pki: podA.pki, sans: [SERVER_SAN] });
    cleanup.add(() => removePod(podB));

    const app = new Proc('app', ['ip', 'netns', 'exec', net.b, process.execPath, `${PROBES}http-app.js`, String(APP_PORT)]);
    cleanup.add(() => app.stop('SIGKILL'));
    await app.waitLine('app listening', (l) => l.text.startsWith('listening'), 0, 10_000);

    // meshlet in each pod, and the same Envoys on the static equivalent, all starting at once.
    writeConfig(podA, clientConfig(podA, 'meshlet', net.addrB));
    writeConfig(podB, mappedConfig(podB, PORTS.meshlet, APP_PORT, PORTS.meshlet.mapped, 'mtls'));
    const ready: Promise<unknown>[] = [];
    for (const [pod, ns] of [
      [podA, net.a],
      [podB, net.b],
    ] as const) {
      const m = new MeshletRun(pod.configPath, '', { envoy: ctx.envoy, ns });
      cleanup.add(() => m.stop());
      ready.push(must(['ip', 'netns', 'exec', ns, process.execPath, CLI, 'wait-ready', '--config', pod.configPath, '--timeout', '60'], 70_000));
    }
    for (const [pod, ns, config, v] of [
      [podA, net.a, clientConfig(podA, 'static', net.addrB), 'static'],
      [podB, net.b, mappedConfig(podB, PORTS.static, APP_PORT, PORTS.static.mapped, 'mtls'), 'static'],
      [podA, net.a, clientConfig(podA, 'classic', net.addrB), 'classic'],
      [podB, net.b, mappedConfig(podB, PORTS.classic, APP_PORT, PORTS.classic.mapped, 'mtls'), 'classic'],
    ] as const) {
      const file = `${pod.dir}/${v}.yaml`;
      // Its own runtime directory: Envoy's admin socket lives next to the xDS socket, and meshlet's Envoy has that one.
      writeConfig(pod, { ...config, proxy: { ...config.proxy, xdsSocket: `${pod.dir}/${v}-run/xds.sock` } }, file);
      await writeStaticBootstrap(file, `${pod.dir}/${v}.json`);
      if (v === 'classic' && overrideGroups(`${pod.dir}/${v}.json`, ['X25519']) === 0)
        throw new Error(`${pod.dir}/${v}.json has no TLS context to make classic`);
      const e = startStaticEnvoy(ctx.envoy, `${pod.dir}/${v}.json`, ns);
      cleanup.add(() => e.stop('SIGTERM', 5_000));
    }
    await Promise.all(ready);
    const host: Record<Variant | 'classic', string> = {
      direct: net.addrB,
      static: PORTS.static.listenIp,
      meshlet: PORTS.meshlet.listenIp,
      classic: PORTS.classic.listenIp,
    };
    await Promise.all([...VARIANTS, 'classic' as const].map((v) => reachable(net.a, host[v])));

    const empty = (): Figures => ({ rps: [], mbps: [], p99Ms: [], connMs: [], errors: 0, errorText: [] });
    const figures: Record<Variant, Figures> = { direct: empty(), static: empty(), meshlet: empty() };
    const kx: Record<'hybrid' | 'classic', number[]> = { hybrid: [], classic: [] };
    const kxErrors: string[] = [];
    for (let round = 0; round < ctx.size.datapathRounds; round++) {
      // Rotate the order each round so no variant always runs first (or hottest).
      for (let k = 0; k < VARIANTS.length; k++) {
        const v = VARIANTS[(k + round) % VARIANTS.length] as Variant;
        await measure(ctx, net.a, host[v], figures[v]);
      }
      // Key exchange: the static pair (hybrid chosen) against the classic pair, back to back, order alternating.
      for (const which of round % 2 === 0 ? (['hybrid', 'classic'] as const) : (['classic', 'hybrid'] as const)) {
        const lat = await connLatency(net.a, which === 'hybrid' ? host.static : host.classic, ctx.size.latencyConns);
        kx[which].push(...lat.samples);
        kxErrors.push(...lat.errors);
      }
      const f = (v: Variant): string => `${v} ${Math.round(figures[v].rps.at(-1) ?? NaN)} req/s`;
      ctx.log(`datapath round ${round + 1}/${ctx.size.datapathRounds}: ${VARIANTS.map(f).join(', ')}`);
    }

    for (const v of VARIANTS) {
      const f = figures[v];
      row.metric(`${v}: keep-alive req/s (wrk -c32, "ok")`, 'req/s', f.rps);
      row.metric(`${v}: keep-alive latency p99 (wrk)`, 'ms', f.p99Ms);
      row.metric(`${v}: bulk MiB/s (wrk -c8, 256 KiB answers)`, 'MiB/s', f.mbps);
      row.metric(`${v}: new-connection latency (connect → full answer)`, 'ms', f.connMs);
      row.metric(`${v}: errors`, 'count', [f.errors]);
    }
    // Handshake bytes: one capture of pod A's link while both pairs open CAPTURED_CONNS connections each.
    const pcap = `${podA.dir}/handshakes.pcapng`;
    const cap = await startCapture(net.a, 'mlb-a', net.addrB, pcap);
    try {
      for (const which of ['static', 'classic'] as const) await connLatency(net.a, host[which], CAPTURED_CONNS);
    } finally {
      await cap.stop();
    }
    const groups = await chosenGroups(pcap, [PORTS.static.mapped, PORTS.classic.mapped]);
    const seen = (port: number): string => [...new Set(groups.get(`${net.addrB}:${port}`) ?? [])].join(',');
    // The comparison means something only if each pair negotiated what it is labelled as.
    if (seen(PORTS.static.mapped) !== 'X25519MLKEM768' || seen(PORTS.classic.mapped) !== 'X25519') {
      throw new Error(
        `groups chosen: hybrid pair "${seen(PORTS.static.mapped)}", classic pair "${seen(PORTS.classic.mapped)}" (expected X25519MLKEM768 and X25519)`,
      );
    }
    const bytes = { hybrid: await handshakeBytes(pcap, PORTS.static.mapped), classic: await handshakeBytes(pcap, PORTS.classic.mapped) };
    for (const which of ['hybrid', 'classic'] as const) {
      const label = which === 'hybrid' ? 'kx hybrid (X25519MLKEM768, static pair)' : 'kx classic (X25519 only, same pair rewritten)';
      row.metric(`${label}: new-connection latency`, 'ms', kx[which]);
      row.metric(`${label}: ClientHello bytes`, 'B', bytes[which].clientHello);
      row.metric(`${label}: ServerHello bytes`, 'B', bytes[which].serverHello);
      row.metric(`${label}: TCP payload per connection, both ways`, 'B', bytes[which].perConnection);
    }
    row.ratio('hybrid / classic new-connection latency', ratio(median(kx.hybrid), median(kx.classic)), 'median / median');
    row.ratio('hybrid / classic TCP payload per connection', ratio(median(bytes.hybrid.perConnection), median(bytes.classic.perConnection)), 'median / median');
    if (kxErrors.length > 0) row.note(`Key exchange comparison errors: ${[...new Set(kxErrors)].slice(0, 3).join('; ')}`);
    row.note(
      `Key exchange: the static pair (meshlet's groups, X25519MLKEM768 chosen) against a classic pair whose bootstrap offers X25519 only (rewritten by the bench; meshlet has no classic-only setting). Groups checked in a capture of pod A's link (${CAPTURED_CONNS} connections per pair); bytes are the cleartext ClientHello and ServerHello records (record header included) and every TCP payload byte of a connection (handshake, request, the app's short answer, close). Envoy resumes TLS sessions upstream (the ticket rides in the ClientHello), so the captured connections skip the certificates but still exchange fresh key shares.`,
    );
    const med = (v: Variant, k: 'rps' | 'mbps' | 'connMs'): number => median(figures[v][k]);
    const rps = row.ratio('meshlet / static keep-alive req/s', ratio(med('meshlet', 'rps'), med('static', 'rps')), 'median / median');
    const mbps = row.ratio('meshlet / static bulk MiB/s', ratio(med('meshlet', 'mbps'), med('static', 'mbps')), 'median / median');
    row.ratio('meshlet / static new-connection latency', ratio(med('meshlet', 'connMs'), med('static', 'connMs')), 'median / median');
    row.ratio('static / direct keep-alive req/s (cost of the mesh itself)', ratio(med('static', 'rps'), med('direct', 'rps')), 'median / median');
    row.ratio('static / direct new-connection latency', ratio(med('static', 'connMs'), med('direct', 'connMs')), 'median / median');
    const errors = VARIANTS.reduce((n, v) => n + figures[v].errors, 0);
    const texts = [...new Set(VARIANTS.flatMap((v) => figures[v].errorText))];
    if (texts.length > 0) row.note(`Errors seen: ${texts.slice(0, 5).join('; ')}`);
    row.target(
      'mesh data path throughput',
      '≥ 0.95× static',
      `${x(rps)} keep-alive req/s, ${x(mbps)} bulk MiB/s${errors ? `; ${errors} errors` : ''}`,
      rps >= 0.95 && (!ctx.size.datapathBulk || mbps >= 0.95) && errors === 0,
    );
    row.note(
      `Pods: network namespaces ${net.addrA}/24 and ${net.addrB}/24 on a veth pair. App: bench/probes/http-app.ts (raw HTTP/1.1, one Node process). Ingress mode mapped on both variants (policy mtls, client SAN not pinned; the egress route pins the server SAN), so neither needs iptables. Both Envoys of a variant use the supervisor's argv (uid 1337, default concurrency). wrk runs with one thread in pod A for ${ctx.size.wrkSeconds} s per figure; new-connection latency is bench/probes/conn-latency.ts (${ctx.size.latencyConns} sequential connections per round, each connect + GET with Connection: close + the whole answer). Rounds are interleaved with the order rotated each round.`,
    );
    return row.result((performance.now() - started) / 1000);
  } catch (err) {
    return row.result((performance.now() - started) / 1000, (err as Error).message);
  } finally {
    await cleanup.run();
  }
}
