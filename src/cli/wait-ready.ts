// meshlet wait-ready: block until /ready answers 200, for an exec startupProbe.
// meshlet dump: print /xds (and /ready) from a running meshlet.
import { yamlLibrary } from '../config/yaml-lib.js';
import { DEFAULT_CONFIG_PATH } from '../config/load.js';
import { parseLoopback, isError, must } from '../config/addresses.js';
import { DEFAULTS } from '../config/constants.js';
import { UsageError } from './usage.js';
import type { Command, Values } from './main.js';
const { readFileSync } = process.getBuiltinModule('node:fs');

/**
 * Where meshlet run serves /ready: --debug-address, else debug.address from
 * the config file, read on its own so that a config with an unrelated
 * mistake (being reloaded, say) still finds the endpoint.
 */
function debugUrl(values: Values): string {
  const explicit = values['debug-address'] as string | undefined;
  let debug = must(parseLoopback(DEFAULTS.debugAddress));
  if (explicit !== undefined) {
    const parsed = parseLoopback(explicit);
    if (isError(parsed)) throw new UsageError(`--debug-address: ${parsed.error} (got "${explicit}"); give the loopback ip:port meshlet run serves /ready on`);
    debug = parsed;
  } else {
    const file = (values['config'] as string | undefined) ?? DEFAULT_CONFIG_PATH;
    try {
      const raw = yamlLibrary().parse(readFileSync(file, 'utf8')) as { debug?: { address?: unknown } } | null;
      const address = raw?.debug?.address;
      if (typeof address === 'string') {
        const parsed = parseLoopback(address);
        if (!isError(parsed)) debug = parsed;
      }
    } catch {
      /* no readable config: the default address */
    }
  }
  return `http://${debug.ip.includes(':') ? `[${debug.ip}]` : debug.ip}:${debug.port}`;
}

// node:http through getBuiltinModule, as everywhere in meshlet (fetch would load undici).
const { get: httpGet } = process.getBuiltinModule('node:http');

/** One GET with a 2 s bound; the status and the body. */
function fetchOnce(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 2 s')));
    req.on('error', reject);
  });
}

async function get(url: string): Promise<{ status: number; body: string }> {
  try {
    return await fetchOnce(url);
  } catch (err) {
    throw new Error(
      `cannot reach meshlet's debug endpoint at ${url} (${(err as Error).message}); is meshlet run up, and is --config or --debug-address right?`,
    );
  }
}

export const waitReadyCommand: Command = {
  options: { timeout: { type: 'string' }, 'debug-address': { type: 'string' } },
  async run(values) {
    const timeoutS = Number((values['timeout'] as string | undefined) ?? '60');
    if (!Number.isFinite(timeoutS) || timeoutS < 0) throw new UsageError(`--timeout must be a number of seconds, not "${String(values['timeout'])}"`);
    const url = `${debugUrl(values)}/ready`;
    const deadline = Date.now() + timeoutS * 1000;
    let last = 'no answer yet';
    for (;;) {
      try {
        const r = await get(url);
        if (r.status === 200) {
          if (values['json'] === true) process.stdout.write(`${JSON.stringify({ ok: true, ready: true, url })}\n`);
          return 0;
        }
        last = r.body.trim();
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // Exit 1 with the reason: an Error would do, but "not ready" is an answer, not a failure of the command.
    if (values['json'] === true)
      process.stdout.write(
        `${JSON.stringify({ ok: false, exitCode: 1, error: 'not-ready', message: `not ready after ${timeoutS}s`, ready: false, url, last })}\n`,
      );
    else process.stderr.write(`meshlet: not ready after ${timeoutS}s: ${last}\n`);
    return 1;
  },
};

export const dumpCommand: Command = {
  options: { 'debug-address': { type: 'string' } },
  async run(values) {
    const base = debugUrl(values);
    const [xds, ready] = await Promise.all([get(`${base}/xds`), get(`${base}/ready`)]);
    if (values['json']) {
      process.stdout.write(`${JSON.stringify({ ready: JSON.parse(ready.body) as unknown, xds: JSON.parse(xds.body) as unknown }, null, 2)}\n`);
      return 0;
    }
    process.stdout.write(renderDump(JSON.parse(ready.body) as ReadyBody, JSON.parse(xds.body) as XdsBody));
    return 0;
  },
};

interface ReadyBody {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail: string }>;
}
interface XdsBody {
  source: string;
  types: Record<string, { version: string; resources: { name?: string }[] }>;
  envoys: {
    nodeId: string;
    kind: string;
    connectedAt: string;
    types: Record<string, { ackedVersion: string | null; nackedVersion: string | null; lastError: string | null; inSync: boolean }>;
  }[];
  reloads: { kind: string; at: string; ok: boolean; error?: string }[];
}

export function renderDump(ready: ReadyBody, xds: XdsBody): string {
  const out: string[] = [`config: ${xds.source}`, `ready: ${ready.ready ? 'yes' : 'NO'}`];
  for (const [name, c] of Object.entries(ready.checks)) out.push(`  ${c.ok ? 'ok ' : 'BAD'} ${name}: ${c.detail}`);
  out.push('resources:');
  for (const [typeUrl, t] of Object.entries(xds.types)) {
    out.push(
      `  ${typeUrl.slice(typeUrl.lastIndexOf('.') + 1)} version ${t.version.slice(0, 12)}: ${t.resources.map((r) => r.name ?? '?').join(', ') || '(none)'}`,
    );
  }
  out.push('envoys:');
  if (xds.envoys.length === 0) out.push('  (none connected)');
  for (const e of xds.envoys) {
    out.push(`  ${e.nodeId} (${e.kind}, since ${e.connectedAt})`);
    for (const [typeUrl, s] of Object.entries(e.types)) {
      const nack = s.nackedVersion ? `, NACKed ${s.nackedVersion.slice(0, 12)}: ${s.lastError ?? ''}` : '';
      out.push(
        `    ${typeUrl.slice(typeUrl.lastIndexOf('.') + 1)}: ACKed ${s.ackedVersion?.slice(0, 12) ?? 'nothing'}${s.inSync ? ' (current)' : ' (behind)'}${nack}`,
      );
    }
  }
  if (xds.reloads.length > 0) out.push('recent reloads:');
  for (const r of xds.reloads) out.push(`  ${r.at} ${r.kind}: ${r.ok ? 'applied' : `refused: ${r.error ?? ''}`}`);
  return `${out.join('\n')}\n`;
}
