// The app-health listener: the kubelet has no mesh certificate, so its probes
// of an app port would fail on an mTLS port (http, grpc) or pass on Envoy's
// accept alone (tcp). Instead the kubelet asks meshlet, on a plaintext port,
// GET /app-health/<name>, and meshlet runs the original probe against the app
// from inside the pod, straight to the app's port and never through Envoy.
// This port answers nothing else: no other path, method or query, and never
// the app's own response, only meshlet's verdict.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { guardedServer, listenDualStack, MAX_HTTP_CONNECTIONS } from './listen.js';
import type { AppProbe } from '../config/model.js';
import { Counter } from './metrics.js';
const { connect } = process.getBuiltinModule('node:net');
const { networkInterfaces } = process.getBuiltinModule('node:os');
// Through getBuiltinModule: the ESM wrapper of node:http keeps undici, http2 and zlib resident (src/debug/server.ts).
const { request } = process.getBuiltinModule('node:http');

export const PROBE_PATH_PREFIX = '/app-health/';

/** A check's verdict; `reason` is meshlet's own words, never the app's bytes. */
export interface ProbeOutcome {
  ok: boolean;
  reason: string;
}

export interface ProbeSources {
  /** The probes as configured now (a reload may change them). */
  checks(): readonly AppProbe[];
  /** The address to dial for a probe (see probeHost). */
  host(p: AppProbe): string;
  /** meshlet_app_probes_total, by probe and result. */
  counter?: Counter;
}

export function probeCounter(): Counter {
  return new Counter('meshlet_app_probes_total', 'App health checks run for /app-health/<name>, by probe and result');
}

/**
 * The pod's own address, where the kubelet would have dialled the app: the
 * first global IPv4 address of a non-loopback interface, else the first
 * global IPv6 one, else 127.0.0.1. From inside the pod a connection to it is
 * local (it travels over lo), so the rules never send it through Envoy.
 */
export function podAddress(ifaces = networkInterfaces()): string {
  const all = Object.values(ifaces)
    .flatMap((l) => l ?? [])
    .filter((a) => !a.internal);
  const v4 = all.find((a) => a.family === 'IPv4' && !a.address.startsWith('169.254.'));
  if (v4) return v4.address;
  const v6 = all.find((a) => a.family === 'IPv6' && !/^fe[89ab]/i.test(a.address));
  return v6?.address ?? '127.0.0.1';
}

/**
 * Where a probe dials: in mapped mode Envoy reaches a proxied app port on
 * 127.0.0.1 (the app may bind loopback only), so the probe checks the same
 * socket; everywhere else the kubelet and Envoy's inbound hop both reach the
 * app at the pod's address, so the probe does too. An app bound to loopback
 * only would pass a loopback probe while the mesh cannot reach it.
 */
export function probeHost(loopbackPorts: ReadonlySet<number>, p: AppProbe, pod: () => string = podAddress): string {
  return loopbackPorts.has(p.port) ? '127.0.0.1' : pod();
}

const hostPort = (host: string, port: number): string => `${host.includes(':') ? `[${host}]` : host}:${port}`;

function tcpCheck(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (o: ProbeOutcome): void => {
      sock.destroy();
      resolve(o);
    };
    sock.setTimeout(timeoutMs, () => done({ ok: false, reason: `no connection to ${hostPort(host, port)} within ${timeoutMs} ms` }));
    sock.once('connect', () => done({ ok: true, reason: `${hostPort(host, port)} accepted a connection` }));
    sock.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, reason: `connecting to ${hostPort(host, port)}: ${err.code ?? err.message}` }));
  });
}

function httpCheck(host: string, port: number, path: string, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (o: ProbeOutcome): void => {
      if (settled) return;
      settled = true;
      req.destroy();
      resolve(o);
    };
    // Like the kubelet: a plain GET, no redirect followed, 200-399 passes. Only the status line is read.
    const req = request(
      { host, port, path, method: 'GET', agent: false, headers: { 'user-agent': 'meshlet-probe', accept: '*/*', connection: 'close' } },
      (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        done(status >= 200 && status < 400 ? { ok: true, reason: `HTTP ${status}` } : { ok: false, reason: `HTTP ${status}` });
      },
    );
    const timer = setTimeout(() => done({ ok: false, reason: `no HTTP answer from ${hostPort(host, port)} within ${timeoutMs} ms` }), timeoutMs);
    req.once('close', () => clearTimeout(timer));
    req.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, reason: `GET ${hostPort(host, port)}: ${err.code ?? err.message}` }));
    req.end();
  });
}

/** grpc.health.v1.HealthCheckRequest { string service = 1; } on the wire. */
export function encodeHealthRequest(service: string): Buffer {
  if (service === '') return Buffer.alloc(0);
  const s = Buffer.from(service, 'utf8');
  const len: number[] = [];
  for (let n = s.length; ; n >>>= 7) {
    if (n < 0x80) {
      len.push(n);
      break;
    }
    len.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x0a, ...len]), s]);
}

/**
 * grpc.health.v1.HealthCheckResponse { ServingStatus status = 1; }: the
 * status, or undefined when the bytes are not that message. Fields other than
 * 1 are skipped, as protobuf requires.
 */
export function decodeHealthStatus(b: Buffer): number | undefined {
  let i = 0;
  let status = 0;
  const varint = (): number | undefined => {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (i >= b.length) return undefined;
      const byte = b[i++] ?? 0;
      v += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return v;
    }
    return undefined;
  };
  while (i < b.length) {
    const tag = varint();
    if (tag === undefined) return undefined;
    const wire = tag & 7;
    if (wire === 0) {
      const v = varint();
      if (v === undefined) return undefined;
      if (tag >>> 3 === 1) status = v;
    } else if (wire === 2) {
      const n = varint();
      if (n === undefined || i + n > b.length) return undefined;
      i += n;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else return undefined;
  }
  return i === b.length ? status : undefined;
}

const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

async function grpcCheck(host: string, port: number, service: string, timeoutMs: number): Promise<ProbeOutcome> {
  // Loaded on the first grpc probe only: a config without one never pays for it here.
  const grpc = await import('@grpc/grpc-js');
  const client = new grpc.Client(hostPort(host, port), grpc.credentials.createInsecure(), {
    'grpc.enable_retries': 0,
    'grpc.service_config_disable_resolution': 1,
  });
  try {
    return await new Promise<ProbeOutcome>((resolve) => {
      client.makeUnaryRequest(
        '/grpc.health.v1.Health/Check',
        (s: string) => encodeHealthRequest(s),
        (b: Buffer) => b,
        service,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, res) => {
          if (err) return resolve({ ok: false, reason: `Health/Check: ${grpc.status[err.code] ?? err.code}` });
          const s = res === undefined ? undefined : decodeHealthStatus(res);
          if (s === undefined) return resolve({ ok: false, reason: 'Health/Check: the answer is not a HealthCheckResponse' });
          resolve({ ok: s === 1, reason: `Health/Check: ${SERVING_STATUS[s] ?? String(s)}` });
        },
      );
    });
  } finally {
    client.close();
  }
}

/** Runs one probe against the app. Never throws. */
export async function runProbe(p: AppProbe, host: string): Promise<ProbeOutcome> {
  const timeoutMs = p.timeoutSeconds * 1000;
  try {
    if (p.kind === 'tcp') return await tcpCheck(host, p.port, timeoutMs);
    if (p.kind === 'http') return await httpCheck(host, p.port, p.path ?? '/', timeoutMs);
    return await grpcCheck(host, p.port, p.service ?? '', timeoutMs);
  } catch (err) {
    return { ok: false, reason: `probe error: ${(err as Error).message}` };
  }
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers });
  res.end(body);
}

/**
 * Serves /app-health/<name>. Requests for the same probe that arrive while its
 * check runs share that check's result, so a flood of requests from outside
 * the pod opens at most one connection per probe to the app at a time.
 */
export async function startProbeServer(port: number, src: ProbeSources): Promise<Server> {
  const inflight = new Map<string, Promise<ProbeOutcome>>();
  const check = (p: AppProbe): Promise<ProbeOutcome> => {
    const key = JSON.stringify(p);
    let running = inflight.get(key);
    if (!running) {
      running = runProbe(p, src.host(p)).finally(() => inflight.delete(key));
      inflight.set(key, running);
    }
    return running;
  };
  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const target = req.url ?? '';
    // Exact targets only: the name as configured, no query, no encoding, no trailing slash.
    const name = target.startsWith(PROBE_PATH_PREFIX) ? target.slice(PROBE_PATH_PREFIX.length) : undefined;
    const probe = name === undefined ? undefined : src.checks().find((p) => p.name === name);
    if (!probe) return send(res, 404, `not found; this port serves only GET ${PROBE_PATH_PREFIX}<name> for the configured probes\n`);
    if (req.method !== 'GET') return send(res, 405, 'method not allowed; this port is read-only\n', { allow: 'GET' });
    const o = await check(probe);
    src.counter?.inc({ probe: probe.name, result: o.ok ? 'pass' : 'fail' });
    return send(res, o.ok ? 200 : 503, `${o.ok ? 'ok' : 'failed'}: ${o.reason}\n`);
  };
  const server = guardedServer({ maxHeaderSize: 8 * 1024, requestTimeout: 70_000, keepAliveTimeout: 5_000 }, MAX_HTTP_CONNECTIONS, (req, res) => {
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) res.shouldKeepAlive = false;
    route(req, res).catch(() => send(res, 500, 'internal error\n'));
  });
  await listenDualStack(server, port, 'probes port');
  return server;
}
