// Row 4: certificate rotation under steady load. Sequential TLS connections
// (verified against the mesh CA) go through a mapped-mode listener while the
// certificate files are rotated the kubelet way (one `..data` swap) N times,
// each waiting for Envoy's ACK of the new secret. Counts failed connections
// and compares handshake latency during the rotations with a steady window
// before them.
import type { Leaf } from '../../src/devpki/pki.js';
import { freshPorts, mappedConfig } from '../lib/configs.js';
import { freePort } from '../lib/http.js';
import { echoApp, steadyTlsLoad, type Conn } from '../lib/load.js';
import { MeshletRun, type Versions } from '../lib/meshlet.js';
import { makePod, removePod, rotateCerts, writeConfig } from '../lib/pod.js';
import { sleep } from '../lib/procs.js';
import { RowBuilder, type RowResult } from '../lib/result.js';
import { ratio } from '../lib/stats.js';
import { changeToAck, servedVersions } from '../lib/xds.js';
import { Cleanup, ms, x, type Ctx } from './context.js';

const SAN = 'rotation-svc';

export async function rotationRow(ctx: Ctx): Promise<RowResult> {
  const row = new RowBuilder('rotation', '4. Certificate rotation under steady load');
  const started = performance.now();
  const cleanup = new Cleanup();
  try {
    const pod = await makePod('rotation', { sans: [SAN] });
    cleanup.add(() => removePod(pod));
    const ports = await freshPorts();
    const [appPort, mappedPort] = [await freePort(), await freePort()];
    const app = await echoApp(appPort);
    cleanup.add(() => app.close());
    writeConfig(pod, mappedConfig(pod, ports, appPort, mappedPort, 'tls'));
    const debugUrl = `http://127.0.0.1:${ports.debug}`;
    const m = new MeshletRun(pod.configPath, debugUrl, { envoy: ctx.envoy });
    cleanup.add(() => m.stop());
    // Issue every leaf before the load starts, so key generation never competes with it.
    const leaves: Leaf[] = [];
    for (let i = 0; i < ctx.size.rotations; i++) leaves.push(await pod.pki.issueLeaf({ sans: [SAN] }));
    await m.waitReady();
    let prev: Versions = await servedVersions(debugUrl);
    const hist0 = await changeToAck(debugUrl);

    const load = steadyTlsLoad({ port: mappedPort, ca: pod.pki.caPem, servername: SAN }, 1_000_000, 300_000);
    cleanup.add(() => load.stop());
    await sleep(ctx.size.rotationSteadyMs);
    const rotStart = performance.now();
    const toAck: number[] = [];
    for (const leaf of leaves) {
      const from = m.proc.lines.length;
      await rotateCerts(pod, leaf);
      const t0 = performance.now();
      const r = await m.reloadAcked('certs', from, prev, 10_000);
      prev = r.versions;
      toAck.push(r.ackedAt - t0);
      await sleep(30);
    }
    const rotEnd = performance.now();
    // A few more connections after the last ACK, to see the final certificate served.
    await sleep(200);
    const conns = await load.stop();
    const hist1 = await changeToAck(debugUrl);

    const steady = conns.filter((c) => c.start < rotStart);
    const during = conns.filter((c) => c.start >= rotStart && c.start <= rotEnd);
    const failed = (cs: Conn[]): Conn[] => cs.filter((c) => !c.ok);
    const hs = (cs: Conn[]): number[] => cs.filter((c) => c.ok).map((c) => c.handshakeMs);
    const s = row.metric('handshake, steady state (before rotations)', 'ms', hs(steady));
    const d = row.metric('handshake, during rotations', 'ms', hs(during));
    row.metric(
      'connection (handshake + echo), steady',
      'ms',
      steady.filter((c) => c.ok).map((c) => c.totalMs),
    );
    row.metric(
      'connection (handshake + echo), during rotations',
      'ms',
      during.filter((c) => c.ok).map((c) => c.totalMs),
    );
    row.metric('rotation (..data swap) → secret ACK', 'ms', toAck);
    row.metric('connections during rotations', 'count', [during.length]);
    row.metric('failed connections during rotations', 'count', [failed(during).length]);
    row.metric('failed connections in steady state', 'count', [failed(steady).length]);
    row.ratio('handshake p50 during / steady', ratio(d.median, s.median), 'median / median');
    row.ratio('handshake p99 during / steady', ratio(d.p99, s.p99), 'p99 / p99');
    const lastLeaf = leaves.at(-1);
    const last = conns.filter((c) => c.ok && c.start > rotEnd).at(-1);
    const served = last?.serial?.toUpperCase() === lastLeaf?.cert.serialNumber.toUpperCase();
    if (lastLeaf && !served)
      row.note(`After the last rotation Envoy served serial ${last?.serial ?? 'none'}, not the last leaf's ${lastLeaf.cert.serialNumber}.`);
    const errs = [...new Set(failed(conns).map((c) => c.error ?? '?'))].slice(0, 5);
    if (errs.length > 0) row.note(`Connection errors seen: ${errs.join('; ')}`);
    const nFail = failed(during).length;
    row.target(
      `cert rotation (${leaves.length} rotations under load)`,
      '0 failed connections',
      `${nFail} failed of ${during.length}; handshake p50 ${x(ratio(d.median, s.median))} steady${served ? '' : '; last cert NOT served'}`,
      nFail === 0 && served,
    );
    const n = hist1.count - hist0.count;
    if (n !== leaves.length)
      row.note(
        `meshlet_change_to_ack_seconds counted ${n} of ${leaves.length} rotations (see the report: secrets are ACKed at a version over the names Envoy requested).`,
      );
    row.note(
      `Mapped listener, policy tls; clients verify the server against the mesh CA and SAN ${SAN}. Each rotation waits for the secret ACK, then 30 ms. Median rotation → ACK ${ms(row.metrics.find((q) => q.name.startsWith('rotation'))?.summary.median ?? NaN)}.`,
    );
    return row.result((performance.now() - started) / 1000);
  } catch (err) {
    return row.result((performance.now() - started) / 1000, (err as Error).message);
  } finally {
    await cleanup.run();
  }
}
