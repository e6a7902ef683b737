// The tiny HTTP service each lab pod runs (emojivoto's web, emoji and
// voting, or a plain server). It knows nothing about the mesh: web dials
// its upstreams on plain http:// addresses (the egress routes).
//
//   node app.js '{"name":"emoji","ports":[8080]}'
//
// Every accepted connection and every chunk of bytes it receives is printed
// as a JSON line on stdout, so the lab can prove what did (and did not)
// reach the app. Routes:
//   GET /            web: a page built from emoji's and voting's answers
//   GET /emoji       emoji: today's emoji
//   GET /leaderboard voting: the votes
//   GET /fetch?url=U the app itself makes an HTTP GET to U (a call from the pod)
//   anything else    JSON: which service and port answered, to whom, which path
import type { AddressInfo, Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
const http = process.getBuiltinModule('node:http');

export interface AppConfig {
  name: string;
  ports: number[];
  /** web only: upstream name → base URL (an egress route's listen address). */
  upstreams?: Record<string, string>;
}

export type AppEvent =
  | { ev: 'listening'; port: number }
  | { ev: 'conn'; id: number; port: number; peer: string }
  | { ev: 'data'; id: number; port: number; peer: string; n: number; head: string }
  | { ev: 'request'; id: number; port: number; peer: string; method: string; path: string };

const EMOJI = { emoji: '🦄', name: 'unicorn' };

function emit(e: AppEvent): void {
  process.stdout.write(`${JSON.stringify(e)}\n`);
}

/** Unmapped IPv4 ("::ffff:198.18.0.1" → "198.18.0.1"). */
export function plainAddress(a: string | undefined): string {
  return (a ?? '').replace(/^::ffff:/, '');
}

/** The first bytes, printable, for logs and assertions. */
function head(b: Buffer): string {
  return b
    .subarray(0, 160)
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, '.');
}

function get(url: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

async function page(cfg: AppConfig): Promise<{ status: number; body: string }> {
  const lines = [`emojivoto, served by ${cfg.name}`];
  let ok = true;
  for (const [name, base] of Object.entries(cfg.upstreams ?? {})) {
    const path = name === 'voting' ? '/leaderboard' : '/emoji';
    try {
      const r = await get(`${base}${path}`);
      ok &&= r.status === 200;
      lines.push(`  ${name.padEnd(7)} ${base}${path} -> ${r.status} ${r.body.trim()}`);
    } catch (err) {
      ok = false;
      lines.push(`  ${name.padEnd(7)} ${base}${path} -> failed: ${(err as Error).message}`);
    }
  }
  return { status: ok ? 200 : 502, body: `${lines.join('\n')}\n` };
}

async function handle(cfg: AppConfig, port: number, req: IncomingMessage): Promise<{ status: number; body: string; type?: string }> {
  const url = new URL(req.url ?? '/', 'http://app');
  if (url.pathname === '/fetch') {
    const target = url.searchParams.get('url') ?? '';
    try {
      const r = await get(target, Number(url.searchParams.get('timeoutMs') ?? 5_000));
      return { status: 200, body: JSON.stringify({ ok: true, status: r.status, body: r.body }) };
    } catch (err) {
      return { status: 502, body: JSON.stringify({ ok: false, error: (err as Error).message }) };
    }
  }
  if (url.pathname === '/' && cfg.upstreams) return { ...(await page(cfg)), type: 'text/plain; charset=utf-8' };
  if (url.pathname === '/emoji') return { status: 200, body: JSON.stringify({ service: cfg.name, ...EMOJI }) };
  if (url.pathname === '/leaderboard') {
    return { status: 200, body: JSON.stringify({ service: cfg.name, votes: { unicorn: 3, doughnut: 2, octopus: 1 } }) };
  }
  return { status: 200, body: JSON.stringify({ service: cfg.name, port, method: req.method, path: req.url, peer: plainAddress(req.socket.remoteAddress) }) };
}

function serve(cfg: AppConfig, port: number, ids: { next: number }): Promise<void> {
  const conn = new WeakMap<Socket, number>();
  const server = http.createServer((req, res) => {
    const peer = plainAddress(req.socket.remoteAddress);
    emit({ ev: 'request', id: conn.get(req.socket) ?? -1, port, peer, method: req.method ?? '', path: req.url ?? '' });
    handle(cfg, port, req).then(
      (r) => {
        res.writeHead(r.status, { 'content-type': r.type ?? 'application/json', 'content-length': Buffer.byteLength(r.body), connection: 'close' });
        res.end(r.body);
      },
      (err: unknown) => {
        res.writeHead(500);
        res.end(String(err));
      },
    );
  });
  // Runs after http's own connection listener; adding a 'data' listener
  // makes http read through the stream too, so both see every byte.
  server.on('connection', (socket: Socket) => {
    const id = ids.next++;
    const peer = plainAddress(socket.remoteAddress);
    conn.set(socket, id);
    emit({ ev: 'conn', id, port, peer });
    socket.on('data', (d: Buffer) => emit({ ev: 'data', id, port, peer, n: d.length, head: head(d) }));
    socket.on('error', () => undefined);
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '::', ipv6Only: false }, () => {
      emit({ ev: 'listening', port: (server.address() as AddressInfo).port });
      resolve();
    });
  });
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as AppConfig;
  const ids = { next: 1 };
  for (const port of cfg.ports) await serve(cfg, port, ids);
  process.stdin.resume();
  // The lab stops the app by closing stdin or with SIGTERM.
  process.stdin.on('end', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`app: ${(err as Error).message}\n`);
  process.exit(1);
});
