// Our HTTP/2 server (src/xds/h2/) against an independent, complete client:
// node:http2's, which is nghttp2. Streams beyond the concurrency limit,
// responses far past the peer's windows, a window change in the middle of a
// response, trailers both ways, and header values that nghttp2 Huffman-codes,
// which proves our Huffman table against a real encoder.
import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { H2Connection, LIMITS, type H2Stream } from '../../src/xds/h2/connection.js';
import { huffmanCodes, huffmanDecode } from '../../src/xds/h2/huffman.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { tmpDirFor } from '../helpers/tmp.js';
import { adsHarness, cluster, CDS } from './ads-fixtures.js';
import { codec } from '../../src/xds/reflect.js';
import { TYPE } from '../../src/xds/protos.js';
import { GrpcServer } from '../../src/xds/grpc.js';

const cleanups = cleanupAfterEach();
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Deterministic bytes: response bodies the client can check without the server sending a hash first. */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

interface EchoServer {
  socketPath: string;
  /** Every connection the server accepted, and the raw bytes each one received. */
  connections: H2Connection[];
  raw: Buffer[];
  maxOpenStreams: number;
  /** Largest number of response bytes left queued for window after a flush. */
  maxQueued: number;
}

/**
 * A server on our H2Connection that reads the request body, then answers with a body of `x-want` pattern bytes
 * (seed `x-seed`), the request headers as JSON in `x-headers` if asked, and trailers with the request body's hash.
 */
async function echoServer(): Promise<EchoServer> {
  const dir = tmpDirFor(cleanups, 'meshlet-h2-');
  const state: EchoServer = { socketPath: path.join(dir, 'h2.sock'), connections: [], raw: [], maxOpenStreams: 0, maxQueued: 0 };
  const server = net.createServer((socket) => {
    socket.on('data', (d: Buffer) => state.raw.push(d));
    const conn: H2Connection = new H2Connection(socket, {
      onError: () => undefined,
      onStream: (stream: H2Stream) => {
        state.maxOpenStreams = Math.max(state.maxOpenStreams, conn.streams.size);
        const body: Buffer[] = [];
        stream.on('data', (d: Buffer) => body.push(d));
        stream.on('end', () => {
          const want = Number(stream.headers['x-want'] ?? 0);
          stream.respond({ ':status': 200, 'x-headers': Buffer.from(JSON.stringify(stream.headers)).toString('base64') });
          // Written in pieces, as the gRPC layer writes one message at a time.
          const out = pattern(want, Number(stream.headers['x-seed'] ?? 0));
          for (let off = 0; off < out.length; off += 100_000) stream.write(out.subarray(off, off + 100_000));
          state.maxQueued = Math.max(state.maxQueued, stream.queuedBytes);
          stream.end({ 'x-request-sha256': sha(Buffer.concat(body)), 'x-request-bytes': String(Buffer.concat(body).length) });
        });
      },
    });
    state.connections.push(conn);
  });
  await new Promise<void>((resolve) => server.listen(state.socketPath, resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const c of state.connections) c.destroy();
        server.close(() => resolve());
      }),
  );
  return state;
}

function connect(socketPath: string, settings: http2.Settings = {}): http2.ClientHttp2Session {
  const session = http2.connect('http://localhost', { createConnection: () => net.connect(socketPath), settings });
  session.on('error', () => undefined);
  cleanups.push(() => session.destroy());
  return session;
}

interface Reply {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

function exchange(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer,
  onResponse?: (req: http2.ClientHttp2Stream) => void,
  timeoutMs = 20_000,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': '/echo', ...headers });
    const out: Reply = { headers: {}, trailers: {}, body: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`no complete response to ${String(headers['x-want'])} bytes within ${timeoutMs} ms`)), timeoutMs);
    req.on('response', (h) => {
      out.headers = h;
      onResponse?.(req);
    });
    req.on('trailers', (t) => (out.trailers = t));
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('end', () => {
      clearTimeout(timer);
      out.body = Buffer.concat(chunks);
      resolve(out);
    });
    req.end(body);
  });
}

describe('HPACK Huffman code', () => {
  it('is a complete prefix code with the RFC 7541 codes at both ends and EOS of 30 ones', () => {
    const codes = huffmanCodes();
    expect(codes).toHaveLength(257);
    // Kraft sum exactly 1: every bit string decodes, no code is a prefix of another.
    const kraft = codes.reduce((sum, [, len]) => sum + 2 ** (30 - len), 0);
    expect(kraft).toBe(2 ** 30);
    expect(codes[0]).toEqual([0x1ff8, 13]);
    expect(codes[48]).toEqual([0x0, 5]);
    expect(codes[255]).toEqual([0x3ffffee, 26]);
    expect(codes[256]).toEqual([0x3fffffff, 30]);
  });

  it('decodes the RFC 7541 Appendix C examples and refuses bad padding and EOS', () => {
    expect(huffmanDecode(Buffer.from('f1e3c2e5f23a6ba0ab90f4ff', 'hex')).toString()).toBe('www.example.com');
    expect(huffmanDecode(Buffer.from('25a849e95ba97d7f', 'hex')).toString()).toBe('custom-key');
    expect(huffmanDecode(Buffer.from('d07abe941054d444a8200595040b8166e082a62d1bff', 'hex')).toString()).toBe('Mon, 21 Oct 2013 20:13:21 GMT');
    // '0' is 00000: three zero bits of padding after it are not a prefix of EOS.
    expect(() => huffmanDecode(Buffer.from([0x00]))).toThrow(/padding/);
    // Eight ones of padding: more than 7 bits.
    expect(() => huffmanDecode(Buffer.from([0x07, 0xff]))).toThrow(/padding/);
    expect(() => huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toThrow(/EOS/);
  });

  it('decodes header values that nghttp2 Huffman-coded, for every byte a header value can carry', async () => {
    const srv = await echoServer();
    const session = connect(srv.socketPath);
    // Every octet node lets into a header value, each inside a run of 'e' (a 5-bit code) so that nghttp2 finds the
    // Huffman form shorter and uses it. 32 headers per request keeps each list under the size limits.
    const octets = [0x09, ...Array.from({ length: 0x7f - 0x20 }, (_, i) => 0x20 + i), ...Array.from({ length: 0x80 }, (_, i) => 0x80 + i)];
    const sent = new Map<string, string>();
    for (const [i, o] of octets.entries()) sent.set(`x-octet-${i}`, `${'e'.repeat(24)}${String.fromCharCode(o)}${'e'.repeat(24)}`);
    const names = [...sent.keys()];
    for (let i = 0; i < names.length; i += 32) {
      const headers = Object.fromEntries(names.slice(i, i + 32).map((n) => [n, sent.get(n)]));
      const reply = await exchange(session, headers, Buffer.alloc(0));
      const got = JSON.parse(Buffer.from(String(reply.headers['x-headers']), 'base64').toString()) as Record<string, string>;
      for (const n of names.slice(i, i + 32)) expect(got[n], n).toBe(sent.get(n));
    }
    // The values never crossed the wire in plain form: nghttp2 did Huffman-code them.
    const raw = Buffer.concat(srv.raw);
    const plain = [...sent.values()].filter((v) => raw.includes(Buffer.from(v, 'latin1')));
    expect(plain).toEqual([]);
  });
});

describe('HTTP/2 server against node:http2 (nghttp2) as the client', () => {
  const h = adsHarness();

  it('serves 40 concurrent streams on one connection, never more open than it advertised', async () => {
    const srv = await echoServer();
    const session = connect(srv.socketPath);
    // A client that opens streams before it has the server's SETTINGS may pass a limit it does not know yet.
    await new Promise((resolve) => session.once('remoteSettings', resolve));
    expect(session.remoteSettings.maxConcurrentStreams).toBe(LIMITS.maxConcurrentStreams);
    const replies = await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        const body = pattern(1000 * i + 1, i + 7);
        return exchange(session, { 'x-want': String(5000 * i), 'x-seed': String(i) }, body).then((r) => ({ r, body, i }));
      }),
    );
    for (const { r, body, i } of replies) {
      expect(r.headers[':status']).toBe(200);
      expect(r.trailers['x-request-sha256']).toBe(sha(body));
      expect(sha(r.body)).toBe(sha(pattern(5000 * i, i)));
    }
    expect(srv.maxOpenStreams).toBeLessThanOrEqual(LIMITS.maxConcurrentStreams);
    expect(srv.maxOpenStreams).toBeGreaterThan(1);
  });

  it('sends a response many times the peer windows, queued until the peer opens them', async () => {
    const srv = await echoServer();
    // The protocol default windows (64 KiB) and frame size: 24 MiB needs hundreds of WINDOW_UPDATEs.
    const session = connect(srv.socketPath);
    const size = 24 * 1024 * 1024;
    const body = pattern(3 * 1024 * 1024, 3);
    const reply = await exchange(session, { 'x-want': String(size), 'x-seed': '9' }, body);
    expect(reply.body.length).toBe(size);
    expect(sha(reply.body)).toBe(sha(pattern(size, 9)));
    expect(reply.trailers['x-request-bytes']).toBe(String(body.length));
    // The server did hold data back for window rather than writing it all at once.
    expect(srv.maxQueued).toBeGreaterThan(0);
  });

  it('follows a SETTINGS_INITIAL_WINDOW_SIZE change in the middle of a response', async () => {
    const srv = await echoServer();
    const session = connect(srv.socketPath, { initialWindowSize: 16_384 });
    const size = 4 * 1024 * 1024;
    let changed: Promise<void> | undefined;
    const reply = await exchange(session, { 'x-want': String(size), 'x-seed': '4' }, Buffer.alloc(0), (req) => {
      // Pause reading, grow every stream's window, then read on.
      req.pause();
      changed = new Promise<void>((resolve) => session.settings({ initialWindowSize: 2 * 1024 * 1024 }, () => resolve())).then(() => {
        req.resume();
      });
    });
    await changed;
    expect(sha(reply.body)).toBe(sha(pattern(size, 4)));
    expect(srv.connections[0]?.peerInitialWindow).toBe(2 * 1024 * 1024);
  });

  it('accepts request trailers and answers with response trailers', async () => {
    const srv = await echoServer();
    const session = connect(srv.socketPath);
    const reply = await new Promise<Reply>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/echo', 'x-want': '10' }, { waitForTrailers: true });
      req.on('wantTrailers', () => req.sendTrailers({ 'x-client-trailer': 'yes' }));
      const out: Reply = { headers: {}, trailers: {}, body: Buffer.alloc(0) };
      req.on('response', (h) => (out.headers = h));
      req.on('trailers', (t) => (out.trailers = t));
      req.on('data', (d: Buffer) => (out.body = Buffer.concat([out.body, d])));
      req.on('error', reject);
      req.on('end', () => resolve(out));
      req.end(Buffer.from('hello'));
    });
    expect(reply.body.length).toBe(10);
    expect(reply.trailers['x-request-sha256']).toBe(sha(Buffer.from('hello')));
  });

  it('serves a large ADS response through the gRPC layer to a client with small windows', async () => {
    await h.start({ clusters: Array.from({ length: 3000 }, (_, i) => cluster(`cluster-with-a-long-name-${i}`)) });
    const session = connect(h.socketPath, { initialWindowSize: 8192 });
    const discovery = codec<Record<string, unknown>>(TYPE.discoveryRequest);
    const msg = discovery.serialize({ node: { id: 'h2' }, type_url: CDS });
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), msg]);
    framed.writeUInt32BE(msg.length, 1);
    const req = session.request({ ':method': 'POST', ':path': SOTW, 'content-type': 'application/grpc', te: 'trailers' });
    const data = await new Promise<Buffer>((resolve, reject) => {
      let got = Buffer.alloc(0);
      req.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.length >= 5 && got.length >= 5 + got.readUInt32BE(1)) resolve(got);
      });
      req.on('error', reject);
      setTimeout(() => reject(new Error('no full CDS response within 20 s')), 20_000);
      req.write(framed);
    });
    const res = codec<{ resources: unknown[] }>(TYPE.discoveryResponse).deserialize(data.subarray(5, 5 + data.readUInt32BE(1)));
    expect(res.resources).toHaveLength(3000);
    expect(data.readUInt32BE(1)).toBeGreaterThan(8192 * 4);
    req.close();
    await h.server.close();
  });
});

describe('HTTP/2 server: window, state and parsing corner cases', () => {
  it('a 1.9 MiB message then a 4 MiB one both arrive: window is given back while a message is half received', async () => {
    const dir = tmpDirFor(cleanups, 'meshlet-h2-stall-');
    const socketPath = path.join(dir, 'g.sock');
    const server = new GrpcServer();
    const got: number[] = [];
    const waiters: (() => void)[] = [];
    server.addMethod<Buffer, Buffer>({
      path: '/x.Y/Z',
      deserialize: (b) => b,
      serialize: (b) => b,
      handler: (call) =>
        call.on('data', (m: Buffer) => {
          got.push(m.length);
          for (const w of waiters.splice(0)) w();
        }),
    });
    await server.listen(socketPath);
    cleanups.push(() => server.forceShutdown());
    const session = connect(socketPath);
    const req = session.request({ ':method': 'POST', ':path': '/x.Y/Z', 'content-type': 'application/grpc' });
    req.on('error', () => undefined);
    const message = (n: number): Buffer => {
      const b = Buffer.alloc(5 + n);
      b.writeUInt32BE(n, 1);
      return b;
    };
    const received = (count: number): Promise<void> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`message ${count} not received within 20 s; got ${JSON.stringify(got)}`)), 20_000);
        const check = (): void => {
          if (got.length >= count) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        check();
      });
    const first = Math.floor(1.9 * 1024 * 1024);
    req.write(message(first));
    await received(1);
    req.write(message(4 * 1024 * 1024 - 10));
    await received(2);
    expect(got).toEqual([first, 4 * 1024 * 1024 - 10]);
  });

  it('request headers named like Object.prototype members are plain headers', async () => {
    const srv = await echoServer();
    const session = connect(srv.socketPath);
    const reply = await exchange(session, { constructor: 'c', tostring: 't', hasownproperty: 'h' }, Buffer.alloc(0));
    const got = JSON.parse(Buffer.from(String(reply.headers['x-headers']), 'base64').toString()) as Record<string, string>;
    expect(got.constructor).toBe('c');
    expect(got.tostring).toBe('t');
  });

  /** A server whose streams are handed to `onStream`, with the connection's errors collected. */
  async function bareServer(onStream: (stream: H2Stream, conn: H2Connection) => void): Promise<{ socketPath: string; errors: Error[] }> {
    const dir = tmpDirFor(cleanups, 'meshlet-h2-bare-');
    const state = { socketPath: path.join(dir, 'h2.sock'), errors: [] as Error[] };
    const conns: H2Connection[] = [];
    const server = net.createServer((socket) => {
      const conn: H2Connection = new H2Connection(socket, { onError: (e) => state.errors.push(e), onStream: (s) => onStream(s, conn) });
      conns.push(conn);
    });
    await new Promise<void>((resolve) => server.listen(state.socketPath, resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const c of conns) c.destroy();
          server.close(() => resolve());
        }),
    );
    return state;
  }

  it('stream listeners that throw when the socket closes are reported, not thrown out of the socket handler, and every stream hears of it', async () => {
    const aborted: string[] = [];
    let bothAborted!: () => void;
    const done = new Promise<void>((resolve) => (bothAborted = resolve));
    const srv = await bareServer((stream) => {
      stream.on('aborted', () => {
        aborted.push(String(stream.headers[':path']));
        if (aborted.length === 2) bothAborted();
        throw new Error(`listener failure on abort of ${String(stream.headers[':path'])}`);
      });
    });
    const session = connect(srv.socketPath);
    await new Promise((resolve) => session.once('remoteSettings', resolve));
    for (const p of ['/a', '/b']) session.request({ ':method': 'POST', ':path': p }).on('error', () => undefined);
    // Wait until the server has both streams: it answers a PING only after it handled the HEADERS before it.
    await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
    session.destroy();
    await done;
    expect(aborted).toEqual(['/a', '/b']);
    expect(srv.errors.map((e) => e.message)).toEqual(['listener failure on abort of /a', 'listener failure on abort of /b']);
  });

  it('data written to another stream from a close listener during a flush is sent', async () => {
    let waiting: H2Stream | undefined;
    const srv = await bareServer((stream) => {
      if (stream.headers[':path'] === '/second') {
        waiting = stream;
        return;
      }
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        // The trailers go out inside flush(); the stream closes there, and its listener answers the other stream.
        stream.on('close', () => {
          waiting?.respond({ ':status': 200 });
          waiting?.write(Buffer.from('second body'));
          waiting?.end({ 'x-done': 'yes' });
        });
        stream.write(Buffer.from('first body'));
        stream.end({ 'x-done': 'yes' });
      });
    });
    const session = connect(srv.socketPath);
    await new Promise((resolve) => session.once('remoteSettings', resolve));
    const second = session.request({ ':method': 'POST', ':path': '/second' });
    second.end();
    const secondReply = new Promise<{ body: string; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
      let body = '';
      let trailers: http2.IncomingHttpHeaders = {};
      second.on('data', (d: Buffer) => (body += d.toString()));
      second.on('trailers', (t) => (trailers = t));
      second.on('end', () => resolve({ body, trailers }));
      second.on('error', reject);
      setTimeout(() => reject(new Error(`the second stream's response did not complete within 10 s (body so far: ${JSON.stringify(body)})`)), 10_000).unref();
    });
    // The first request goes after the second is open on the server (the PING answer follows its HEADERS).
    await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
    expect(waiting).toBeDefined();
    const first = await exchange(session, { ':path': '/first' }, Buffer.alloc(0));
    expect(first.body.toString()).toBe('first body');
    const reply = await secondReply;
    expect(reply.body).toBe('second body');
    expect(reply.trailers['x-done']).toBe('yes');
  });
});

const SOTW = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
