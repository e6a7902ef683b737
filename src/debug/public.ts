// The read-only public listener: the one meshlet endpoint reachable from
// outside the pod, opted into with `metrics.port` (or CONTRAST_ADMIN_PORT). It
// answers exactly two requests, GET /stats/prometheus (Envoy's stats, read
// through the injected admin client, followed by meshlet's own metrics) and
// GET /ready, and refuses everything else. Envoy's admin itself (config dump,
// /quitquitquit, /logging, /drain_listeners) stays private to the pod: this
// server never forwards a path, a query or a method of the caller's choosing.
// Concurrent scrapes share one admin request and one rendered answer, and that
// request reads at most MAX_ENVOY_STATS_BYTES of body, so a peer opening every
// connection at once costs meshlet one bounded copy of Envoy's stats, not one
// per connection.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AdminGetOptions } from '../envoy/admin.js';
import { guardedServer, listenDualStack, MAX_HTTP_CONNECTIONS } from './listen.js';
import { singleFlight } from './single-flight.js';
import type { Metrics } from './metrics.js';
import { Gauge } from './metrics.js';
// Through getBuiltinModule: the ESM wrapper of node:http keeps undici, http2 and zlib resident (src/debug/server.ts).

/** What the public server asks of its admin client on each request: the largest body, in bytes, it accepts. */
export type AdminGetLimits = Pick<AdminGetOptions, 'maxBytes'>;

/**
 * Envoy's admin, behind whatever transport it uses: GET `path`, the answer.
 *
 * With `opts.maxBytes`, the client must stop reading once the body passes that
 * many bytes and reject (src/envoy/admin.ts adminGet does, given the same
 * `maxBytes`), so an oversized answer is never buffered whole. `opts` is
 * optional and a client may ignore it: the caller still refuses a larger body
 * after the fact, it only loses the bound on memory while reading.
 */
export type AdminGet = (path: string, opts?: AdminGetLimits) => Promise<{ status: number; body: string }>;

export interface PublicSources {
  /** Envoy's admin client; only ever called with ENVOY_STATS_PATH. */
  adminGet: AdminGet;
  metrics: Metrics;
  ready(): Promise<{ ready: boolean }>;
}

/** The only admin path this server ever asks Envoy for. */
export const ENVOY_STATS_PATH = '/stats/prometheus';
export const PUBLIC_PATHS = ['/stats/prometheus', '/ready'] as const;

/** A scrape must not let a misbehaving Envoy make meshlet buffer without bound. */
export const MAX_ENVOY_STATS_BYTES = 32 * 1024 * 1024;

function send(res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers });
  res.end(body);
}

/** The metric name a Prometheus text line is about ("# HELP x", "# TYPE x", "x{..} v"). */
function metricOf(line: string): string | undefined {
  const m = /^(?:#\s*(?:HELP|TYPE)\s+)?([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
  return m?.[1];
}

/**
 * Envoy's text with every line about a `meshlet_*` metric removed: those names
 * are meshlet's, so a compromised Envoy cannot forge them (or collide with
 * them) in the combined scrape.
 */
export function envoyPart(text: string): string {
  const lines = text.split('\n').filter((l) => !(metricOf(l) ?? '').startsWith('meshlet_'));
  const out = lines.join('\n').replace(/\n+$/, '');
  return out === '' ? '' : `${out}\n`;
}

/**
 * One read of Envoy's stats, rendered with meshlet's own metrics into the body
 * every scrape waiting on it sends (one Buffer, shared, never copied per
 * connection). `up` is set and rendered in the same synchronous step, so the
 * body carries this read's verdict.
 */
async function scrape(src: PublicSources, up: Gauge): Promise<Buffer> {
  let envoy = '';
  try {
    const r = await src.adminGet(ENVOY_STATS_PATH, { maxBytes: MAX_ENVOY_STATS_BYTES });
    // Checked again, in bytes: a client that ignores maxBytes must not pass a larger body on either.
    if (r.status === 200 && Buffer.byteLength(r.body) <= MAX_ENVOY_STATS_BYTES) {
      envoy = envoyPart(r.body);
      up.set(1);
    } else up.set(0);
  } catch {
    up.set(0);
  }
  return Buffer.from(`${envoy}${src.metrics.render()}${up.render()}\n`);
}

async function route(req: IncomingMessage, res: ServerResponse, src: PublicSources, stats: () => Promise<Buffer>): Promise<void> {
  // Exact request targets only: no query string reaches anything, no encoded or dotted variants.
  const target = req.url ?? '';
  if (!(PUBLIC_PATHS as readonly string[]).includes(target)) return send(res, 404, `not found; this port serves only GET ${PUBLIC_PATHS.join(' and GET ')}\n`);
  if (req.method !== 'GET') return send(res, 405, 'method not allowed; this port is read-only\n', { allow: 'GET' });
  if (target === '/ready') {
    const r = await src.ready();
    // Only the verdict: the details (node ids, versions, rule names) stay on the loopback debug endpoint.
    return send(res, r.ready ? 200 : 503, r.ready ? 'ready\n' : 'not ready\n');
  }
  return send(res, 200, await stats(), { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
}

/**
 * Listens on every address of the pod on `port`: `::` accepts IPv4 too
 * (dual-stack); a pod without IPv6 falls back to 0.0.0.0.
 */
export async function startPublicServer(port: number, src: PublicSources): Promise<Server> {
  const up = new Gauge('meshlet_envoy_stats_up', "1 when this scrape read Envoy's stats, 0 when Envoy's admin did not answer");
  const stats = singleFlight(() => scrape(src, up));
  const server = guardedServer({ maxHeaderSize: 8 * 1024, requestTimeout: 10_000, keepAliveTimeout: 5_000 }, MAX_HTTP_CONNECTIONS, (req, res) => {
    // A request body is never read; do not keep the connection for the next request.
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) res.shouldKeepAlive = false;
    route(req, res, src, stats).catch(() => send(res, 500, 'internal error\n'));
  });
  await listenDualStack(server, port, 'metrics port');
  return server;
}
