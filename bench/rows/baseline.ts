// Row 1: the baseline the other rows compare against. `meshlet bootstrap
// --static` writes the same mesh as one static Envoy config (every listener,
// cluster and secret inline, no xDS), as Contrast ships it. This row checks
// that it is equivalent (the same resource names as the ADS snapshot of the
// same config) and that Envoy accepts it (`envoy --mode validate`).
import { readFileSync } from 'node:fs';
import { loadCerts } from '../../src/certs/index.js';
import { loadConfig } from '../../src/config/load.js';
import { buildResources } from '../../src/xds/builders/index.js';
import { freshPorts, featureConfig, loopbackBlock } from '../lib/configs.js';
import { writeStaticBootstrap } from '../lib/envoy.js';
import { freePort } from '../lib/http.js';
import { makePod, removePod, writeConfig } from '../lib/pod.js';
import { run } from '../lib/procs.js';
import { RowBuilder, type RowResult } from '../lib/result.js';
import { Cleanup, type Ctx } from './context.js';

interface Named {
  name?: string;
}

const names = (xs: readonly Named[] | undefined): string =>
  (xs ?? [])
    .map((x) => x.name ?? '?')
    .sort()
    .join(',');

export async function baselineRow(ctx: Ctx): Promise<RowResult> {
  const row = new RowBuilder('baseline', '1. Baseline: the static equivalent');
  const started = performance.now();
  const cleanup = new Cleanup();
  try {
    const pod = await makePod('baseline');
    cleanup.add(() => removePod(pod));
    writeConfig(pod, featureConfig(pod, await freshPorts(), loopbackBlock(), await freePort()));
    const out = `${pod.dir}/static.json`;
    await writeStaticBootstrap(pod.configPath, out);
    const t = performance.now();
    const v = await run([ctx.envoy, '--mode', 'validate', '-c', out, '--disable-hot-restart', '--log-level', 'error'], 60_000);
    const validateMs = performance.now() - t;
    if (v.code !== 0) throw new Error(`envoy --mode validate rejected the static bootstrap: ${v.stderr}${v.stdout}`);
    const boot = JSON.parse(readFileSync(out, 'utf8')) as { static_resources?: { listeners?: Named[]; clusters?: Named[]; secrets?: Named[] } };
    const config = loadConfig(pod.configPath).config;
    const ads = buildResources(config, loadCerts(config.certs));
    const st = boot.static_resources ?? {};
    const same = names(st.listeners) === names(ads.listeners) && names(st.clusters) === names(ads.clusters) && names(st.secrets) === names(ads.secrets);
    row.metric('envoy --mode validate on the static bootstrap', 'ms', [validateMs]);
    row.metric('static listeners', 'count', [st.listeners?.length ?? 0]);
    row.metric('static clusters', 'count', [st.clusters?.length ?? 0]);
    row.metric('static secrets', 'count', [st.secrets?.length ?? 0]);
    if (!same) throw new Error('the static bootstrap does not hold the same listeners, clusters and secrets as the ADS snapshot of the same config');
    row.note(
      "Rows 2, 5 and 6 start the same Envoy binary on `meshlet bootstrap --static` of their own config, with the supervisor's argv; this row checks, on row 2's config, that the static bootstrap carries exactly the listener, cluster and secret names of the ADS snapshot and that Envoy validates it.",
    );
    return row.result((performance.now() - started) / 1000);
  } catch (err) {
    return row.result((performance.now() - started) / 1000, (err as Error).message);
  } finally {
    await cleanup.run();
  }
}
