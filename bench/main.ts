// `npm run bench`: runs every row on a bounded load, prints a table and
// writes bench/RESULTS.md. `--tiny` (or BENCH_SIZE=tiny) runs each row on a
// tiny size to prove the harness works; `--only start,reload` picks rows;
// `--out FILE` writes the report elsewhere.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { envoyPath, envoyVersion } from './lib/envoy.js';
import { describeMachine } from './lib/machine.js';
import { killAllSync } from './lib/procs.js';
import { renderMarkdown, renderText } from './lib/report.js';
import type { RowResult } from './lib/result.js';
import { FULL, TINY } from './lib/size.js';
import type { Ctx } from './rows/context.js';
import { ROWS } from './rows/index.js';

const DEFAULT_OUT = fileURLToPath(new URL('../../bench/RESULTS.md', import.meta.url));

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { tiny: { type: 'boolean' }, only: { type: 'string' }, out: { type: 'string' } } });
  const tiny = values.tiny === true || process.env['BENCH_SIZE'] === 'tiny';
  const size = tiny ? TINY : FULL;
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: needs root (Envoy runs as uid 1337 with CAP_NET_ADMIN; the data-path row uses network namespaces)\n');
    return 1;
  }
  const only = values.only?.split(',').map((s) => s.trim());
  const unknown = only?.filter((id) => !ROWS.some((r) => r.id === id)) ?? [];
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown row ${unknown.join(', ')}; rows: ${ROWS.map((r) => r.id).join(', ')}\n`);
    return 2;
  }
  const envoy = envoyPath();
  const machine = describeMachine(await envoyVersion(envoy));
  const ctx: Ctx = { size, envoy, log: (line) => process.stderr.write(`[bench] ${line}\n`) };
  ctx.log(
    `size ${size.name}; ${machine.cores} cores, ${machine.memoryGiB} GiB, Linux ${machine.kernel}; Envoy ${machine.envoy}, Node ${machine.node}; load average ${machine.loadAvg}`,
  );
  const results: RowResult[] = [];
  // How long the harness itself takes is a bench figure, not a test assertion: logged per row and in total.
  const started = Date.now();
  for (const r of ROWS) {
    if (only && !only.includes(r.id)) continue;
    ctx.log(`row ${r.id} …`);
    const rowStarted = Date.now();
    const result = await r.run(ctx);
    ctx.log(`row ${r.id} took ${((Date.now() - rowStarted) / 1000).toFixed(1)} s`);
    if (result.error) ctx.log(`row ${r.id} failed: ${result.error}`);
    results.push(result);
  }
  ctx.log(`all rows took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.stdout.write(renderText(results));
  const out = values.out ?? (tiny ? undefined : DEFAULT_OUT);
  if (out) {
    writeFileSync(out, renderMarkdown(results, machine, size, new Date(), Math.round((os.loadavg()[0] ?? NaN) * 100) / 100));
    ctx.log(`wrote ${out}`);
  }
  return results.some((r) => r.error) ? 1 : 0;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAllSync();
    process.exit(130);
  });
}

process.exitCode = await main();
