// An app with a health endpoint of one kind, for the probe tests: an HTTP
// server, a bare TCP server, or a real grpc-js server implementing
// grpc.health.v1.Health/Check (from the proto below, through protobufjs, so
// it shares no code with meshlet's own health check client).
//
//   node health-app.js '{"kind":"grpc","port":50051,"host":"::","status":"SERVING"}'
//
// Prints {"ev":"listening",...} once bound and one event per check with the
// caller's address (so a test sees the check came straight from meshlet, not
// from Envoy's 127.0.0.6). Exits when stdin closes or on SIGTERM.
import protobuf from 'protobufjs';
import type { Server, Socket } from 'node:net';
const http = process.getBuiltinModule('node:http');
const net = process.getBuiltinModule('node:net');

export interface HealthAppConfig {
  kind: 'http' | 'tcp' | 'grpc';
  port: number;
  /** Bind address; default "::" (every address, both families). */
  host?: string;
  /** http: the status GET answers; default 200. */
  httpStatus?: number;
  /** http: a body the probe must never pass on. */
  body?: string;
  /** grpc: the status Check answers for "" and every service in `services`; default SERVING. */
  status?: 'SERVING' | 'NOT_SERVING' | 'UNKNOWN';
  services?: string[];
}

const HEALTH_PROTO = `
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
`;

function emit(e: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(e)}\n`);
}

const peerOf = (s: Socket): string => (s.remoteAddress ?? '').replace(/^::ffff:/, '');

function listenNet(server: Server, cfg: HealthAppConfig): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const host = cfg.host ?? '::';
    server.listen({ port: cfg.port, host, ...(host === '::' ? { ipv6Only: false } : {}) }, () => resolve());
  });
}

async function startGrpc(cfg: HealthAppConfig): Promise<void> {
  const grpc = await import('@grpc/grpc-js');
  const root = protobuf.parse(HEALTH_PROTO).root;
  const Req = root.lookupType('grpc.health.v1.HealthCheckRequest');
  const Res = root.lookupType('grpc.health.v1.HealthCheckResponse');
  const known = new Set(['', ...(cfg.services ?? [])]);
  const server = new grpc.Server();
  server.addService(
    {
      Check: {
        path: '/grpc.health.v1.Health/Check',
        requestStream: false,
        responseStream: false,
        requestSerialize: (v: object) => Buffer.from(Req.encode(Req.fromObject(v)).finish()),
        requestDeserialize: (b: Buffer) => Req.toObject(Req.decode(b), { defaults: true }),
        responseSerialize: (v: object) => Buffer.from(Res.encode(Res.fromObject(v)).finish()),
        responseDeserialize: (b: Buffer) => Res.toObject(Res.decode(b), { enums: String }),
      },
    },
    {
      Check: (call: { request: { service: string }; getPeer(): string }, cb: (err: unknown, res?: object) => void) => {
        emit({ ev: 'check', kind: 'grpc', service: call.request.service, peer: call.getPeer() });
        if (!known.has(call.request.service)) return cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
        cb(null, { status: cfg.status ?? 'SERVING' });
      },
    } as never,
  );
  const host = cfg.host ?? '::';
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${cfg.port}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    );
  });
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as HealthAppConfig;
  if (cfg.kind === 'grpc') await startGrpc(cfg);
  else if (cfg.kind === 'http') {
    const server = http.createServer((req, res) => {
      emit({ ev: 'check', kind: 'http', path: req.url, peer: peerOf(req.socket), ua: req.headers['user-agent'] });
      res.writeHead(cfg.httpStatus ?? 200, { 'content-type': 'text/plain', connection: 'close' });
      res.end(cfg.body ?? 'healthy\n');
    });
    await listenNet(server, cfg);
  } else {
    const server = net.createServer((s) => {
      emit({ ev: 'check', kind: 'tcp', peer: peerOf(s) });
      s.on('error', () => undefined);
      s.end();
    });
    await listenNet(server, cfg);
  }
  emit({ ev: 'listening', kind: cfg.kind, port: cfg.port });
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`health-app: ${(err as Error).message}\n`);
  process.exit(1);
});
