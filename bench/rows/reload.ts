// Row 3: config edit → Envoy ACK. Each edit is a real change, alternating
// between toggling a port's policy (LDS only) and adding or removing an
// egress route (CDS and LDS). The clock starts when the rename that replaces
// the file returns and stops when the ACK line for the last changed type
// reaches us on meshlet's stdout: no polling, so the measurement adds no
// load. meshlet's own histogram (which starts at the first file event) is
// read before and after as a cross-check.
import { fileURLToPath } from 'node:url';
import { freshPorts, featureConfig, loopbackBlock } from '../lib/configs.js';
import { freePort } from '../lib/http.js';
import { MeshletRun, type Versions } from '../lib/meshlet.js';
import { makePod, removePod, writeConfig } from '../lib/pod.js';
import { probe, sleep } from '../lib/procs.js';
import { RowBuilder, type RowResult } from '../lib/result.js';
import { changeToAck, servedVersions } from '../lib/xds.js';
import { Cleanup, ms, type Ctx } from './context.js';
import { DEFAULT_DEBOUNCE_MS, DEFAULT_RECHECK_MS } from '../../src/reload/watcher.js';

const PROBE = fileURLToPath(new URL('../probes/reload-path.js', import.meta.url));

interface PathSteps {
  parseValidate: number[];
  restartCheck: number[];
  builders: number[];
  snapshot: number[];
  reloadConfig: number[];
}

export async function reloadRow(ctx: Ctx): Promise<RowResult> {
  const row = new RowBuilder('reload', '3. Config edit → Envoy ACK');
  const started = performance.now();
  const cleanup = new Cleanup();
  try {
    const pod = await makePod('reload');
    cleanup.add(() => removePod(pod));
    const ports = await freshPorts();
    const block = loopbackBlock();
    const routePort = await freePort();
    let policy: 'tls' | 'mtls' = 'tls';
    let extra = false;
    writeConfig(pod, featureConfig(pod, ports, block, routePort, policy, extra));
    const debugUrl = `http://127.0.0.1:${ports.debug}`;
    const m = new MeshletRun(pod.configPath, debugUrl, { envoy: ctx.envoy });
    cleanup.add(() => m.stop());
    await m.waitReady();
    let prev: Versions = await servedVersions(debugUrl);
    const hist0 = await changeToAck(debugUrl);
    const total: number[] = [];
    const applied: number[] = [];
    const byKind: Record<'policy' | 'route', number[]> = { policy: [], route: [] };
    for (let i = 0; i < ctx.size.reloadEdits; i++) {
      const kind = i % 2 === 0 ? 'policy' : 'route';
      if (kind === 'policy') policy = policy === 'tls' ? 'mtls' : 'tls';
      else extra = !extra;
      const from = m.proc.lines.length;
      writeConfig(pod, featureConfig(pod, ports, block, routePort, policy, extra));
      const t0 = performance.now();
      const r = await m.reloadAcked('config', from, prev, 10_000);
      if (r.changed.length === 0) throw new Error(`edit ${i} (${kind}) changed no xDS version`);
      prev = r.versions;
      total.push(r.ackedAt - t0);
      applied.push(r.applied.t - t0);
      byKind[kind].push(r.ackedAt - t0);
      // Let the edit settle beyond the watcher's debounce, so edits never coalesce.
      await sleep(25);
    }
    const hist1 = await changeToAck(debugUrl);
    const s = row.metric('edit (rename returned) → last ACK line', 'ms', total);
    row.metric('  edit → reload applied (debounce, parse, validate, build)', 'ms', applied);
    row.metric(
      '  reload applied → last ACK (push, Envoy applies, ACK)',
      'ms',
      total.map((t, i) => t - (applied[i] ?? NaN)),
    );
    row.metric('  policy toggle (LDS only) → ACK', 'ms', byKind.policy);
    row.metric('  route add/remove (CDS + LDS) → ACK', 'ms', byKind.route);
    const n = hist1.count - hist0.count;
    row.metric("meshlet's own histogram: mean change → ACK", 'ms', n > 0 ? [((hist1.sum - hist0.sum) / n) * 1000] : []);
    if (n !== ctx.size.reloadEdits) row.note(`meshlet_change_to_ack_seconds counted ${n} changes for ${ctx.size.reloadEdits} edits.`);
    // Where the time before "reload applied" goes: the same steps in a probe process, warm.
    const steps = await probe<PathSteps>([PROBE, pod.configPath, String(Math.min(ctx.size.reloadEdits, 30) + 2)]);
    const warm = (v: number[]): number[] => v.slice(2);
    row.metric('reload path (probe, warm): reloadConfig() total', 'ms', warm(steps.reloadConfig));
    row.metric('  step: YAML parse + validate', 'ms', warm(steps.parseValidate));
    row.metric('  step: restart-only check (iptables rules + bootstrap of both configs)', 'ms', warm(steps.restartCheck));
    row.metric('  step: builders (config → Envoy JSON)', 'ms', warm(steps.builders));
    row.metric('  step: snapshot (encode + hash)', 'ms', warm(steps.snapshot));
    row.noteLargest('step:', 'step of the reload path (probe)');
    row.target('config edit → ACK p50', '≤ 30 ms', ms(s.median), s.median <= 30);
    row.target('config edit → ACK p99', '≤ 150 ms', ms(s.p99), s.p99 <= 150);
    row.note(
      `Same config as row 2 (tproxy, 3 ports, 3 routes, capture). Debounce included: the watcher's default (${DEFAULT_DEBOUNCE_MS} ms debounce, ` +
        `${DEFAULT_RECHECK_MS} ms re-read of a renamed file). 25 ms pause after each ACK so edits never coalesce; one edit in flight at a time.`,
    );
    return row.result((performance.now() - started) / 1000);
  } catch (err) {
    return row.result((performance.now() - started) / 1000, (err as Error).message);
  } finally {
    await cleanup.run();
  }
}
