// A one-shot client the lab runs inside a namespace (as any uid): one
// connection, one JSON line on stdout describing exactly how far it got.
// Node built-ins only, so a copy can run from anywhere.
//
//   node probe.js '{"op":"http","host":"198.18.0.12","port":8080,"path":"/x","tls":{"ca":"ca.pem"}}'
//
// With "repeat": {everyMs, maxCount, maxMs} it keeps trying, one JSON line per
// attempt, until stdin closes or a bound is hit (the lab's startup watcher).
//
// ops: http (plain or TLS, optionally with a client certificate), tcp (send
// bytes, read what comes back), dns (an A/AAAA query over UDP or TCP).
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
const dgram = process.getBuiltinModule('node:dgram');
const { readFileSync } = process.getBuiltinModule('node:fs');
const net = process.getBuiltinModule('node:net');
const tls = process.getBuiltinModule('node:tls');

export interface TlsOptions {
  /** CA bundle to verify the server against (reported, never fatal). */
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
}

export type ProbeRequest =
  | { op: 'http'; host: string; port: number; path: string; tls?: TlsOptions; timeoutMs?: number }
  | { op: 'tcp'; host: string; port: number; send: string; timeoutMs?: number }
  | { op: 'dns'; server: string; name: string; type: 'A' | 'AAAA'; tcp?: boolean; timeoutMs?: number }
  | { op: 'udp'; host: string; port: number; send: string; broadcast?: boolean; timeoutMs?: number };

export interface RepeatOptions {
  /** Start an attempt at most this often. */
  everyMs: number;
  maxCount: number;
  maxMs: number;
}

export interface ProbeResult {
  /** http: a complete HTTP response; tcp: connected; dns: an answer. */
  ok: boolean;
  /** How far it got: connect → handshake (TLS) → sent → response. */
  stage: 'connect' | 'handshake' | 'sent' | 'response';
  error?: string;
  status?: number;
  body?: string;
  /** Raw bytes received (first 4 KiB, latin1). */
  received?: string;
  tls?: { protocol: string | null; authorized: boolean; authorizationError?: string; peerSans: string; peerSubject: string };
  answers?: string[];
  rcode?: number;
  ms: number;
  /** repeat mode: when the attempt started (ms since the epoch). */
  at?: number;
}

type Outcome = Omit<ProbeResult, 'ms'>;

/** RFC 9112 §7.1: chunk-size CRLF data CRLF …, ending with a 0-size chunk. */
function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(b.subarray(at, eol).toString('latin1'), 16);
    if (!(size > 0)) break;
    out.push(b.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

function parseHttp(raw: Buffer): { status?: number; body?: string } {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw.subarray(0, 16).toString('latin1'));
  const sep = raw.indexOf('\r\n\r\n');
  if (!m) return {};
  if (sep < 0) return { status: Number(m[1]) };
  const head = raw.subarray(0, sep).toString('latin1');
  const body = raw.subarray(sep + 4);
  return { status: Number(m[1]), body: (/\r\ntransfer-encoding:\s*chunked/i.test(head) ? dechunk(body) : body).toString('utf8') };
}

function stream(req: Extract<ProbeRequest, { op: 'http' | 'tcp' }>): Promise<Outcome> {
  return new Promise((resolve) => {
    const timeoutMs = req.timeoutMs ?? 5_000;
    let stage: ProbeResult['stage'] = 'connect';
    let received = Buffer.alloc(0);
    let tlsInfo: ProbeResult['tls'];
    const payload = req.op === 'http' ? `GET ${req.path} HTTP/1.1\r\nHost: ${req.host}\r\nConnection: close\r\n\r\n` : req.send;
    const useTls = req.op === 'http' && req.tls !== undefined;
    const socket: Socket = useTls
      ? tls.connect({
          host: req.host,
          port: req.port,
          rejectUnauthorized: false,
          ...(req.tls?.ca ? { ca: readFileSync(req.tls.ca) } : {}),
          ...(req.tls?.cert ? { cert: readFileSync(req.tls.cert) } : {}),
          ...(req.tls?.key ? { key: readFileSync(req.tls.key) } : {}),
          ...(req.tls?.servername ? { servername: req.tls.servername } : {}),
        })
      : net.connect({ host: req.host, port: req.port });
    let done = false;
    const report = (error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const http = req.op === 'http' ? parseHttp(received) : {};
      const ok = req.op === 'http' ? http.status !== undefined && error === undefined : stage !== 'connect';
      resolve({
        ok,
        stage,
        ...(error ? { error } : {}),
        ...http,
        received: received.subarray(0, 4096).toString('latin1'),
        ...(tlsInfo ? { tls: tlsInfo } : {}),
      });
    };
    const timer = setTimeout(() => report(`timeout after ${timeoutMs} ms (stage ${stage})`), timeoutMs);
    const send = (): void => {
      stage = 'sent';
      socket.write(payload);
    };
    socket.once('connect', () => {
      stage = useTls ? 'handshake' : 'connect';
      if (!useTls) send();
    });
    socket.once('secureConnect', () => {
      const s = socket as TLSSocket;
      const peer = s.getPeerCertificate();
      tlsInfo = {
        protocol: s.getProtocol(),
        authorized: s.authorized,
        ...(s.authorizationError ? { authorizationError: String(s.authorizationError) } : {}),
        peerSans: peer.subjectaltname ?? '',
        peerSubject: String(peer.subject?.CN ?? ''),
      };
      send();
    });
    socket.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      stage = 'response';
    });
    socket.once('error', (err: NodeJS.ErrnoException) => report(`${err.code ?? 'error'}: ${err.message}`));
    socket.once('close', () => report(received.length === 0 && stage !== 'connect' ? 'closed by the peer without an answer' : undefined));
  });
}

// RFC 1035 §4: a query for one name, and the A/AAAA records of the answer.
function dnsQuery(name: string, type: 'A' | 'AAAA'): Buffer {
  const labels = name
    .split('.')
    .filter(Boolean)
    .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  const header = Buffer.from([0x4d, 0x4c, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, type === 'A' ? 1 : 28, 0, 1])]);
}

function skipName(b: Buffer, at: number): number {
  while (at < b.length) {
    const len = b[at] ?? 0;
    if (len === 0) return at + 1;
    if ((len & 0xc0) === 0xc0) return at + 2;
    at += len + 1;
  }
  return at;
}

function dnsAnswers(b: Buffer): { rcode: number; answers: string[] } {
  const rcode = (b[3] ?? 0) & 0x0f;
  const qd = b.readUInt16BE(4);
  const an = b.readUInt16BE(6);
  let at = 12;
  for (let i = 0; i < qd; i++) at = skipName(b, at) + 4;
  const answers: string[] = [];
  for (let i = 0; i < an && at < b.length; i++) {
    at = skipName(b, at);
    const type = b.readUInt16BE(at);
    const len = b.readUInt16BE(at + 8);
    const data = b.subarray(at + 10, at + 10 + len);
    if (type === 1 && len === 4) answers.push([...data].join('.'));
    // The URL parser writes IPv6 in its canonical (compressed) form.
    if (type === 28 && len === 16)
      answers.push(new URL(`http://[${Array.from({ length: 8 }, (_, k) => data.readUInt16BE(k * 2).toString(16)).join(':')}]`).hostname.slice(1, -1));
    at += 10 + len;
  }
  return { rcode, answers };
}

function dns(req: Extract<ProbeRequest, { op: 'dns' }>): Promise<Outcome> {
  return new Promise((resolve) => {
    const timeoutMs = req.timeoutMs ?? 3_000;
    const query = dnsQuery(req.name, req.type);
    const timer = setTimeout(() => resolve({ ok: false, stage: 'sent', error: `timeout after ${timeoutMs} ms` }), timeoutMs);
    const answer = (b: Buffer): void => {
      clearTimeout(timer);
      const { rcode, answers } = dnsAnswers(b);
      resolve({ ok: rcode === 0 && answers.length > 0, stage: 'response', rcode, answers });
    };
    const fail = (stage: ProbeResult['stage'], err: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      resolve({ ok: false, stage, error: `${err.code ?? 'error'}: ${err.message}` });
    };
    if (req.tcp) {
      const s = net.connect({ host: req.server, port: 53 }, () => s.write(Buffer.concat([Buffer.from([query.length >> 8, query.length & 0xff]), query])));
      let got = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
          s.destroy();
          answer(got.subarray(2));
        }
      });
      s.once('error', (err: NodeJS.ErrnoException) => fail('connect', err));
      return;
    }
    const sock = dgram.createSocket(net.isIPv6(req.server) ? 'udp6' : 'udp4');
    sock.on('message', (m) => {
      sock.close();
      answer(m);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => fail('sent', err));
    sock.send(query, 53, req.server);
  });
}

function udp(req: Extract<ProbeRequest, { op: 'udp' }>): Promise<Outcome> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(net.isIPv6(req.host) ? 'udp6' : 'udp4');
    sock.once('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, stage: 'connect', error: `${err.code ?? 'error'}: ${err.message}` }));
    sock.bind(() => {
      if (req.broadcast) sock.setBroadcast(true);
      sock.send(req.send, req.port, req.host, (err) => {
        sock.close();
        resolve(err ? { ok: false, stage: 'connect', error: err.message } : { ok: true, stage: 'sent' });
      });
    });
  });
}

function once(req: ProbeRequest): Promise<Outcome> {
  if (req.op === 'dns') return dns(req);
  if (req.op === 'udp') return udp(req);
  return stream(req);
}

async function timed(req: ProbeRequest): Promise<ProbeResult> {
  const t0 = Date.now();
  const r = await once(req);
  return { ...r, ms: Date.now() - t0 };
}

/**
 * With `repeat`, one line per attempt (each with `at`, ms since the epoch),
 * one attempt at a time, until stdin closes or a bound is hit.
 */
async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2] ?? '{}') as ProbeRequest & { repeat?: RepeatOptions };
  if (!req.repeat) {
    process.stdout.write(`${JSON.stringify(await timed(req))}\n`);
    process.exit(0);
  }
  const { everyMs, maxCount, maxMs } = req.repeat;
  let stopped = false;
  process.stdin.on('end', () => (stopped = true));
  process.stdin.resume();
  const t0 = Date.now();
  for (let i = 0; i < maxCount && !stopped && Date.now() - t0 < maxMs; i++) {
    const at = Date.now();
    process.stdout.write(`${JSON.stringify({ ...(await timed(req)), at })}\n`);
    await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (Date.now() - at))));
  }
  process.exit(0);
}

void main();
