// The debug endpoint, loopback only: /healthz, /ready, /xds, /metrics and,
// when enabled, /config_dump (Envoy's own, keys redacted).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Metrics } from './metrics.js';
import { redact } from './redact.js';
import { guardedServer, MAX_HTTP_CONNECTIONS } from './listen.js';
import { singleFlight } from './single-flight.js';
const { isIP } = process.getBuiltinModule('node:net');

export interface ReadyCheck {
  ok: boolean;
  detail: string;
}

export interface ReadyReport {
  ready: boolean;
  checks: Record<string, ReadyCheck>;
}

export interface DebugSources {
  ready(): Promise<ReadyReport>;
  xds(): unknown;
  metrics: Metrics;
  /** Envoy's /config_dump, when the operator enabled the passthrough. */
  envoyConfigDump?: () => Promise<unknown>;
}

function send(res: ServerResponse, status: number, body: string | Buffer, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

const json = (v: unknown): string => `${JSON.stringify(redact(v), null, 2)}\n`;

async function route(req: IncomingMessage, res: ServerResponse, src: DebugSources, configDump?: () => Promise<Buffer>): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  switch (url.pathname) {
    case '/healthz':
      return send(res, 200, 'ok\n', 'text/plain');
    case '/ready': {
      const report = await src.ready();
      src.metrics.ready.set(report.ready ? 1 : 0);
      return send(res, report.ready ? 200 : 503, json(report));
    }
    case '/xds':
      return send(res, 200, json(src.xds()));
    case '/metrics':
      return send(res, 200, src.metrics.render(), 'text/plain; version=0.0.4');
    case '/config_dump':
      if (!configDump) return send(res, 404, json({ error: 'Envoy config_dump passthrough is off; start meshlet run with --debug-envoy-config-dump' }));
      return send(res, 200, await configDump());
    default:
      return send(res, 404, json({ error: 'not found', paths: ['/healthz', '/ready', '/xds', '/metrics', '/config_dump'] }));
  }
}

export async function startDebugServer(address: { ip: string; port: number }, src: DebugSources): Promise<Server> {
  if (!(address.ip.startsWith('127.') || address.ip === '::1') || isIP(address.ip) === 0) {
    throw new Error(`debug endpoint must bind to loopback, not ${address.ip}`);
  }
  // Envoy's whole config dump is one admin request on its main thread, and megabytes once rendered: requests that come
  // together share both.
  const dump = src.envoyConfigDump;
  const configDump = dump ? singleFlight(async () => Buffer.from(json(await dump()))) : undefined;
  const server = guardedServer({ maxHeaderSize: 8 * 1024, requestTimeout: 10_000, keepAliveTimeout: 5_000 }, MAX_HTTP_CONNECTIONS, (req, res) => {
    route(req, res, src, configDump).catch((err: unknown) => send(res, 500, json({ error: (err as Error).message })));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.ip, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
