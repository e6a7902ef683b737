// The ADS socket's HTTP/2 server against hostile peers speaking raw bytes: a
// compromised Envoy (uid 1337) can send anything, and meshlet runs as root.
// Each attack must end that connection with GOAWAY and the error code RFC 9113
// names (or reset only the stream, where that is the rule), and afterwards the
// server must still serve a fresh, well-behaved ADS client.
import http2 from 'node:http2';
import net from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/xds/h2/connection.js';
import { MAX_CONNECTIONS, MAX_STATUS_MESSAGE_CHARS } from '../../src/xds/grpc.js';
import type { AdsServer } from '../../src/xds/server.js';
import { codec } from '../../src/xds/reflect.js';
import { TYPE } from '../../src/xds/protos.js';
import { adsHarness, cluster, CDS, type Harness } from './ads-fixtures.js';
import { prng } from '../helpers/prng.js';

const SOTW = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 };
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const ACK = 0x1;
const E = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  FLOW_CONTROL_ERROR: 3,
  STREAM_CLOSED: 5,
  FRAME_SIZE_ERROR: 6,
  REFUSED_STREAM: 7,
  COMPRESSION_ERROR: 9,
  ENHANCE_YOUR_CALM: 11,
};

/** One frame, written by hand so the test does not share the server's framing code. */
function f(type: number, flags: number, stream: number, payload: Buffer | number[] = []): Buffer {
  const p = Buffer.from(payload);
  const h = Buffer.alloc(9);
  h.writeUIntBE(p.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, p]);
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

/** HPACK literal without indexing, new name, no Huffman (lengths under 127). */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

/** A valid gRPC request header block for the SotW method. */
const requestBlock = (): Buffer =>
  Buffer.concat([literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', SOTW), literal('content-type', 'application/grpc')]);

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** A raw HTTP/2 client: writes bytes, parses the server's frames, and reports GOAWAY or the socket closing. */
class RawPeer {
  readonly frames: Frame[] = [];
  private buf = Buffer.alloc(0);
  private readonly socket: net.Socket;
  private readonly waiters = new Set<() => void>();
  closed = false;

  constructor(socketPath: string) {
    this.socket = net.connect(socketPath);
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 9 && this.buf.length >= 9 + this.buf.readUIntBE(0, 3)) {
        const len = this.buf.readUIntBE(0, 3);
        this.frames.push({ type: this.buf[3] ?? 0, flags: this.buf[4] ?? 0, stream: this.buf.readUInt32BE(5), payload: this.buf.subarray(9, 9 + len) });
        this.buf = this.buf.subarray(9 + len);
      }
      this.wake();
    });
    // The server may close while we still write: the writes fail, which is what the attack expects.
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Sends the client preface and an empty SETTINGS. */
  static open(socketPath: string): RawPeer {
    const p = new RawPeer(socketPath);
    p.send(PREFACE, f(T.SETTINGS, 0, 0));
    return p;
  }

  send(...parts: Buffer[]): void {
    if (!this.socket.destroyed) this.socket.write(Buffer.concat(parts));
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Waits until `pred` finds a frame; fails when the socket closes first or after 10 s. */
  waitFrame(what: string, pred: (fr: Frame) => boolean): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = this.frames.find(pred);
        if (hit) return done(() => resolve(hit));
        if (this.closed) return done(() => reject(new Error(`connection closed without ${what}; frames: ${this.summary()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no ${what} within 10 s; frames: ${this.summary()}`))), 10_000);
      const done = (fn: () => void): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        fn();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** The GOAWAY's error code, once the server has also closed the connection. */
  async goaway(): Promise<number> {
    const g = await this.waitFrame('GOAWAY', (fr) => fr.type === T.GOAWAY);
    await new Promise<void>((resolve, reject) => {
      if (this.closed) return resolve();
      const timer = setTimeout(() => reject(new Error('the server sent GOAWAY but did not close the connection within 10 s')), 10_000);
      this.waiters.add(() => {
        if (this.closed) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    return g.payload.readUInt32BE(4);
  }

  summary(): string {
    return this.frames.map((fr) => `${fr.type}/${fr.flags}/${fr.stream}`).join(' ') || 'none';
  }
}

async function stillServes(h: Harness, resources = 1): Promise<void> {
  const c = h.connect().sotw('after-attack');
  c.request(CDS);
  expect((await c.next()).resources).toHaveLength(resources);
}

function grpcMessage(bytes: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

/** The server's side of every connection it accepts from now on, to read what it holds (its socket's output backlog). */
function serverSockets(server: AdsServer): net.Socket[] {
  const sockets: net.Socket[] = [];
  const raw = (server as unknown as { server: { server: net.Server } }).server.server;
  raw.on('connection', (s: net.Socket) => sockets.push(s));
  return sockets;
}

/** A raw client that never reads what the server sends: the server's output can only pile up on its side. */
async function deafPeer(socketPath: string): Promise<{ socket: net.Socket; closed: Promise<void>; send: (b: Buffer) => Promise<boolean> }> {
  const socket = net.connect(socketPath);
  socket.pause();
  socket.on('error', () => undefined);
  let isClosed = false;
  const closed = new Promise<void>((resolve) => socket.on('close', () => ((isClosed = true), resolve())));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const send = (b: Buffer): Promise<boolean> =>
    new Promise((resolve) => {
      if (isClosed || socket.destroyed) return resolve(false);
      socket.write(b, (err) => resolve(!err));
    });
  return { socket, closed, send };
}

/** Waits for `p`, failing after 10 s with what was awaited. */
function within<T>(what: string, p: Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not happen within 10 s`)), 10_000);
    p.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e: unknown) => (clearTimeout(timer), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}

/** A full garbage collection, so memory still held is memory something references. */
function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('ADS HTTP/2 server against hostile peers', () => {
  const h = adsHarness();
  const peers: RawPeer[] = [];
  afterEach(() => {
    for (const p of peers.splice(0)) p.destroy();
  });
  const open = (raw = false): RawPeer => {
    const p = raw ? new RawPeer(h.socketPath) : RawPeer.open(h.socketPath);
    peers.push(p);
    return p;
  };
  const attack = async (name: string, code: number, send: (p: RawPeer) => void): Promise<void> => {
    const p = open();
    send(p);
    expect(await p.goaway(), name).toBe(code);
  };

  it('a connection that does not start with the client preface gets GOAWAY(PROTOCOL_ERROR)', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const p = open(true);
    p.send(Buffer.from('PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n'));
    expect(await p.goaway()).toBe(E.PROTOCOL_ERROR);
    // The preface, then a PING where the SETTINGS must be.
    const q = open(true);
    q.send(PREFACE, f(T.PING, 0, 0, Buffer.alloc(8)));
    expect(await q.goaway()).toBe(E.PROTOCOL_ERROR);
    await stillServes(h);
  });

  it('malformed frames end the connection with the code for each', async () => {
    await h.start({ clusters: [cluster('c1')] });
    // A length past our SETTINGS_MAX_FRAME_SIZE (the default, 16384): refused on the header alone.
    await attack('oversized frame', E.FRAME_SIZE_ERROR, (p) => p.send(Buffer.from([0x00, 0x40, 0x01, T.DATA, 0, 0, 0, 0, 1])));
    await attack('PING of 7 bytes', E.FRAME_SIZE_ERROR, (p) => p.send(f(T.PING, 0, 0, Buffer.alloc(7))));
    await attack('WINDOW_UPDATE of 3 bytes', E.FRAME_SIZE_ERROR, (p) => p.send(f(T.WINDOW_UPDATE, 0, 0, [0, 0, 1])));
    await attack('SETTINGS of 5 bytes', E.FRAME_SIZE_ERROR, (p) => p.send(f(T.SETTINGS, 0, 0, Buffer.alloc(5))));
    await attack('SETTINGS on a stream', E.PROTOCOL_ERROR, (p) => p.send(f(T.SETTINGS, 0, 1)));
    await attack('SETTINGS_MAX_FRAME_SIZE too small', E.PROTOCOL_ERROR, (p) => p.send(f(T.SETTINGS, 0, 0, [0, 5, 0, 0, 0x10, 0])));
    await attack('PUSH_PROMISE from a client', E.PROTOCOL_ERROR, (p) => p.send(f(T.PUSH_PROMISE, END_HEADERS, 1, Buffer.alloc(4))));
    await attack('DATA on an idle stream', E.PROTOCOL_ERROR, (p) => p.send(f(T.DATA, 0, 5, Buffer.alloc(3))));
    await attack('padding longer than the frame', E.PROTOCOL_ERROR, (p) =>
      p.send(f(T.HEADERS, END_HEADERS | 0x8, 1, Buffer.concat([Buffer.from([200]), requestBlock()]))),
    );
    await attack('a header block interrupted by a PING', E.PROTOCOL_ERROR, (p) => p.send(f(T.HEADERS, 0, 1, requestBlock()), f(T.PING, 0, 0, Buffer.alloc(8))));
    await stillServes(h);
  });

  it('HPACK: an index past the tables, a bad Huffman string or a table size above ours is a COMPRESSION_ERROR', async () => {
    await h.start({ clusters: [cluster('c1')] });
    // Index 62 is the first dynamic entry, and the dynamic table is empty.
    await attack('index out of range', E.COMPRESSION_ERROR, (p) => p.send(f(T.HEADERS, END_HEADERS, 1, Buffer.concat([requestBlock(), Buffer.from([0xbe])]))));
    // A Huffman value of one byte 0x00: the symbol '0', then three zero bits, which are not EOS padding.
    await attack('bad Huffman padding', E.COMPRESSION_ERROR, (p) =>
      p.send(f(T.HEADERS, END_HEADERS, 1, Buffer.concat([requestBlock(), Buffer.from([0x00, 0x01, 0x78, 0x81, 0x00])]))),
    );
    // Dynamic table size update to 4097 (5-bit prefix 31, then 4066 in two continuation bytes).
    await attack('table size above SETTINGS_HEADER_TABLE_SIZE', E.COMPRESSION_ERROR, (p) =>
      p.send(f(T.HEADERS, END_HEADERS, 1, Buffer.concat([Buffer.from([0x3f, 0xe2, 0x1f]), requestBlock()]))),
    );
    await stillServes(h);
  });

  it('an HPACK bomb (one large table entry referenced thousands of times) is stopped by the header list budget', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const p = open();
    // Stream 1: a valid request that also puts a 4000-byte value into the dynamic table (incremental indexing).
    const entry = Buffer.concat([
      Buffer.from([0x40, 6]),
      Buffer.from('x-bomb'),
      Buffer.from([0x7f, 0x80 | ((4000 - 127) & 0x7f), (4000 - 127) >> 7]),
      Buffer.alloc(4000, 0x61),
    ]);
    expect(entry.length).toBe(2 + 6 + 3 + 4000);
    // 16000 one-byte references to it would decode to 64 MB.
    const bomb = Buffer.concat([requestBlock(), Buffer.alloc(16_000, 0xbe)]);
    p.send(f(T.HEADERS, END_HEADERS, 1, Buffer.concat([requestBlock(), entry])), f(T.HEADERS, END_HEADERS, 3, bomb));
    expect(await p.goaway()).toBe(E.ENHANCE_YOUR_CALM);
    await stillServes(h);
  });

  it('a CONTINUATION flood, by frame count or by size, is ENHANCE_YOUR_CALM', async () => {
    await h.start({ clusters: [cluster('c1')] });
    await attack('many empty CONTINUATIONs', E.ENHANCE_YOUR_CALM, (p) =>
      p.send(f(T.HEADERS, 0, 1, requestBlock()), ...Array.from({ length: 1000 }, () => f(T.CONTINUATION, 0, 1))),
    );
    await attack('a header block past 64 KiB', E.ENHANCE_YOUR_CALM, (p) =>
      p.send(f(T.HEADERS, 0, 1, requestBlock()), ...Array.from({ length: 6 }, () => f(T.CONTINUATION, 0, 1, Buffer.alloc(16_000)))),
    );
    await stillServes(h);
  });

  it('a window past 2^31-1 and data beyond our window are FLOW_CONTROL_ERRORs', async () => {
    await h.start({ clusters: [cluster('c1')] });
    await attack('connection window overflow', E.FLOW_CONTROL_ERROR, (p) => p.send(f(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff))));
    await attack('SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1', E.FLOW_CONTROL_ERROR, (p) => p.send(f(T.SETTINGS, 0, 0, [0, 4, 0x80, 0, 0, 0])));
    // Five streams each start a 4 MiB message and never finish it: nothing is read, so nothing is given back,
    // and the fifth passes the 16 MiB connection window.
    await attack('data beyond the connection window', E.FLOW_CONTROL_ERROR, (p) => {
      const prefix = Buffer.from([0, 0, 0x40, 0, 0]);
      const chunk = Buffer.alloc(16_000);
      for (let s = 1; s <= 9; s += 2) {
        const frames = [f(T.HEADERS, END_HEADERS, s, requestBlock()), f(T.DATA, 0, s, prefix)];
        for (let sent = 5; sent + chunk.length < 4 * 1024 * 1024; sent += chunk.length) frames.push(f(T.DATA, 0, s, chunk));
        p.send(...frames);
      }
    });
    await stillServes(h);
  });

  it('stream ids must be odd and increasing: reuse or an even id is a PROTOCOL_ERROR', async () => {
    await h.start({ clusters: [cluster('c1')] });
    await attack('lower id after a higher one', E.PROTOCOL_ERROR, (p) =>
      p.send(f(T.HEADERS, END_HEADERS, 5, requestBlock()), f(T.HEADERS, END_HEADERS, 3, requestBlock())),
    );
    await attack('even id', E.PROTOCOL_ERROR, (p) => p.send(f(T.HEADERS, END_HEADERS, 2, requestBlock())));
    await stillServes(h);
  });

  it('PING, SETTINGS and rapid-reset floods are ENHANCE_YOUR_CALM', async () => {
    await h.start({ clusters: [cluster('c1')] });
    await attack('PING flood', E.ENHANCE_YOUR_CALM, (p) => p.send(...Array.from({ length: 5000 }, () => f(T.PING, 0, 0, Buffer.alloc(8)))));
    await attack('SETTINGS flood', E.ENHANCE_YOUR_CALM, (p) => p.send(...Array.from({ length: 5000 }, () => f(T.SETTINGS, 0, 0))));
    await attack('rapid reset', E.ENHANCE_YOUR_CALM, (p) => {
      const frames: Buffer[] = [];
      for (let s = 1; s < 2 * 3000; s += 2) frames.push(f(T.HEADERS, END_HEADERS, s, requestBlock()), f(T.RST_STREAM, 0, s, u32(8)));
      p.send(...frames);
    });
    // Streams that end as they open, or are refused for their headers, cost no RST_STREAM from the peer.
    await attack('streams opened and ended at once', E.ENHANCE_YOUR_CALM, (p) =>
      p.send(...Array.from({ length: 3000 }, (_, i) => f(T.HEADERS, END_HEADERS | END_STREAM, 2 * i + 1, requestBlock()))),
    );
    await attack('streams with invalid headers', E.ENHANCE_YOUR_CALM, (p) =>
      p.send(...Array.from({ length: 3000 }, (_, i) => f(T.HEADERS, END_HEADERS, 2 * i + 1, literal(':method', 'POST')))),
    );
    await stillServes(h);
  });

  it('a connection with no stream open is ended with GOAWAY(NO_ERROR) after LIMITS.idleMs; one with its ADS stream open stays', async () => {
    await h.start({ clusters: [cluster('c1')] });
    // Silent: not even the preface. Four such connections would otherwise take every slot the server has.
    const silent = new RawPeer(h.socketPath);
    const busy = open();
    const discovery = codec<Record<string, unknown>>(TYPE.discoveryRequest);
    busy.send(f(T.HEADERS, END_HEADERS, 1, requestBlock()), f(T.DATA, 0, 1, grpcMessage(discovery.serialize({ node: { id: 'raw' }, type_url: CDS }))));
    await busy.waitFrame('the CDS response', (fr) => fr.type === T.DATA && fr.stream === 1);
    expect(await silent.goaway()).toBe(E.NO_ERROR);
    await silent.waitFrame('the connection closing', () => false).catch((err: Error) => expect(err.message).toMatch(/connection closed/));
    busy.send(f(T.PING, 0, 0, Buffer.from('stillup!')));
    await busy.waitFrame('PING ACK', (fr) => fr.type === T.PING && (fr.flags & ACK) !== 0);
    expect(busy.frames.filter((fr) => fr.type === T.GOAWAY)).toEqual([]);
    expect(busy.closed).toBe(false);
    busy.destroy();
  });

  it('streams past SETTINGS_MAX_CONCURRENT_STREAMS are refused one by one, the connection stays up', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const p = open();
    const settings = await p.waitFrame('server SETTINGS', (fr) => fr.type === T.SETTINGS && !(fr.flags & ACK));
    let max = 0;
    for (let i = 0; i < settings.payload.length; i += 6) if (settings.payload.readUInt16BE(i) === 3) max = settings.payload.readUInt32BE(i + 2);
    expect(max).toBeGreaterThan(0);
    const frames: Buffer[] = [];
    for (let n = 0; n <= max; n++) frames.push(f(T.HEADERS, END_HEADERS, 2 * n + 1, requestBlock()));
    p.send(...frames);
    const refused = 2 * max + 1;
    const rst = await p.waitFrame('RST_STREAM on the stream past the limit', (fr) => fr.type === T.RST_STREAM && fr.stream === refused);
    expect(rst.payload.readUInt32BE(0)).toBe(E.REFUSED_STREAM);
    // Unknown frame types and PRIORITY are ignored; the connection still answers a PING.
    p.send(f(0xfa, 0, 0, Buffer.alloc(3)), f(T.PRIORITY, 0, 1, Buffer.alloc(5)), f(T.PING, 0, 0, Buffer.from('stillup!')));
    const pong = await p.waitFrame('PING ACK', (fr) => fr.type === T.PING && (fr.flags & ACK) !== 0);
    expect(pong.payload.toString()).toBe('stillup!');
    expect(p.frames.filter((fr) => fr.type === T.GOAWAY)).toEqual([]);
    expect(p.frames.filter((fr) => fr.type === T.RST_STREAM && fr.stream !== refused)).toEqual([]);
    await stillServes(h);
  });

  it('a peer that vanishes mid-stream ends its ADS stream (disconnect), and the server serves on', async () => {
    const server = await h.start({ clusters: [cluster('c1')] });
    const disconnected = new Promise<void>((resolve) => server.onDisconnect(() => resolve()));
    const p = open();
    const discovery = codec<Record<string, unknown>>(TYPE.discoveryRequest);
    p.send(f(T.HEADERS, END_HEADERS, 1, requestBlock()), f(T.DATA, 0, 1, grpcMessage(discovery.serialize({ node: { id: 'raw' }, type_url: CDS }))));
    await p.waitFrame('a DATA frame with the CDS response', (fr) => fr.type === T.DATA && fr.stream === 1);
    expect(server.status().envoys).toHaveLength(1);
    p.destroy();
    await disconnected;
    expect(server.status().envoys).toHaveLength(0);
    await stillServes(h);
  });

  it('after a gRPC error status the request side is reset with NO_ERROR, and later frames on it are harmless', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const p = open();
    p.send(f(T.HEADERS, END_HEADERS, 1, requestBlock()), f(T.DATA, 0, 1, Buffer.from([1, 0, 0, 0, 1, 0])));
    const rst = await p.waitFrame('RST_STREAM after the trailers', (fr) => fr.type === T.RST_STREAM && fr.stream === 1);
    expect(rst.payload.readUInt32BE(0)).toBe(E.NO_ERROR);
    const trailers = p.frames.find((fr) => fr.type === T.HEADERS && fr.stream === 1 && (fr.flags & END_STREAM) !== 0);
    expect(trailers?.payload.toString('latin1')).toContain('grpc-status');
    // A client that had not yet seen the reset keeps sending: ignored, the connection lives.
    p.send(f(T.DATA, 0, 1, Buffer.alloc(10)), f(T.WINDOW_UPDATE, 0, 1, u32(10)), f(T.PING, 0, 0, Buffer.from('alive...')));
    await p.waitFrame('PING ACK', (fr) => fr.type === T.PING && (fr.flags & ACK) !== 0);
    expect(p.frames.filter((fr) => fr.type === T.GOAWAY)).toEqual([]);
  });

  it('close(): GOAWAY(NO_ERROR) to a connected peer, its stream ends with a status, then the connection closes', async () => {
    const server = await h.start({ clusters: [cluster('c1')] });
    const p = open();
    const discovery = codec<Record<string, unknown>>(TYPE.discoveryRequest);
    p.send(f(T.HEADERS, END_HEADERS, 1, requestBlock()), f(T.DATA, 0, 1, grpcMessage(discovery.serialize({ node: { id: 'raw' }, type_url: CDS }))));
    await p.waitFrame('the CDS response', (fr) => fr.type === T.DATA && fr.stream === 1);
    await server.close();
    expect(await p.goaway()).toBe(E.NO_ERROR);
    const trailers = p.frames.find((fr) => fr.type === T.HEADERS && fr.stream === 1 && (fr.flags & END_STREAM) !== 0);
    expect(trailers?.payload.toString('latin1')).toContain('grpc-status');
  });

  it('close() with a peer that never opens its window: the grace period ends and the connection is destroyed', async () => {
    // A CDS response larger than the 64 KiB default window, so the trailers wait behind data that cannot be sent.
    const server = await h.start({ clusters: Array.from({ length: 5000 }, (_, i) => cluster(`cluster-${i}`)) });
    const p = open();
    const discovery = codec<Record<string, unknown>>(TYPE.discoveryRequest);
    p.send(f(T.HEADERS, END_HEADERS, 1, requestBlock()), f(T.DATA, 0, 1, grpcMessage(discovery.serialize({ node: { id: 'stuck' }, type_url: CDS }))));
    await p.waitFrame('the first DATA frame', (fr) => fr.type === T.DATA && fr.stream === 1);
    await server.close(200);
    await p.waitFrame('the connection closing', () => false).catch((err: Error) => expect(err.message).toMatch(/connection closed/));
    expect(p.closed).toBe(true);
    expect(p.frames.some((fr) => fr.type === T.HEADERS && fr.stream === 1 && (fr.flags & END_STREAM) !== 0)).toBe(false);
  });

  it('a peer that never reads and sends padded DATA without data is cut off: it spends the flood budget, our output stays bounded', async () => {
    const server = await h.start({ clusters: [cluster('c1')] });
    const sockets = serverSockets(server);
    const peer = await deafPeer(h.socketPath);
    // A stream holding part of a message (5 of 1000 bytes), so that every frame on it could be answered with window.
    const prefix = Buffer.from([0, 0, 0, 0x03, 0xe8, 1, 2, 3]);
    await peer.send(Buffer.concat([PREFACE, f(T.SETTINGS, 0, 0), f(T.HEADERS, END_HEADERS, 1, requestBlock()), f(T.DATA, 0, 1, prefix)]));
    const padded = f(T.DATA, 0x8, 1, [0]);
    const batch = Buffer.concat(Array.from({ length: 10_000 }, () => padded));
    let maxBacklog = 0;
    for (let i = 0; i < 60 && (await peer.send(batch)); i++) maxBacklog = Math.max(maxBacklog, ...sockets.map((s) => s.writableLength));
    await within('the server closing the connection of a peer that never reads', peer.closed);
    expect(sockets).toHaveLength(1);
    expect(maxBacklog).toBeLessThanOrEqual(LIMITS.maxSocketBacklog + 64 * 1024);
    await stillServes(h);
  });

  it('a peer that never reads and opens cheap streams answered at once is cut off: each stream spends flood budget, our output stays bounded', async () => {
    const server = await h.start({ clusters: [cluster('c1')] });
    const sockets = serverSockets(server);
    const peer = await deafPeer(h.socketPath);
    // The first request puts its four headers in the dynamic table (62..65); each next one is 4 bytes of indexes.
    // The path names no method, so each is answered at once with a trailers-only status, about 90 bytes out per 13 in.
    const indexed = (n: string, v: string): Buffer => Buffer.concat([Buffer.from([0x40, n.length]), Buffer.from(n), Buffer.from([v.length]), Buffer.from(v)]);
    const first = Buffer.concat([
      indexed('content-type', 'application/grpc'),
      indexed(':path', '/no/Such'),
      indexed(':scheme', 'http'),
      indexed(':method', 'POST'),
    ]);
    await peer.send(Buffer.concat([PREFACE, f(T.SETTINGS, 0, 0), f(T.HEADERS, END_HEADERS | END_STREAM, 1, first)]));
    const again = Buffer.from([0xbe, 0xbf, 0xc0, 0xc1]);
    let id = 3;
    let maxBacklog = 0;
    const serverClosed = new Promise<void>((resolve) => sockets[0]?.once('close', () => resolve()));
    for (let i = 0; i < 40; i++) {
      const batch: Buffer[] = [];
      for (let k = 0; k < 10_000; k++, id += 2) batch.push(f(T.HEADERS, END_HEADERS | END_STREAM, id, again));
      if (!(await peer.send(Buffer.concat(batch)))) break;
      maxBacklog = Math.max(maxBacklog, ...sockets.map((s) => s.writableLength));
    }
    // The peer reads nothing, so it may never see the end; the server's side of the connection closes.
    await within('the server closing the connection of a peer that opens stream after stream', serverClosed);
    expect(sockets).toHaveLength(1);
    expect(maxBacklog).toBeLessThanOrEqual(LIMITS.maxSocketBacklog + 64 * 1024);
    await stillServes(h);
  });

  it('unread bytes do not pin the socket chunks they came in: 60 data bytes per 16 KiB chunk keep about that many bytes, not the chunks', async () => {
    const server = await h.start({ clusters: [cluster('c1')] });
    const chunks: WeakRef<ArrayBuffer>[] = [];
    const raw = (server as unknown as { server: { server: net.Server } }).server.server;
    // Listening before the server's own handler: every chunk the connection gets is seen here.
    raw.prependListener('connection', (s: net.Socket) => s.prependListener('data', (d: Buffer) => void chunks.push(new WeakRef(d.buffer as ArrayBuffer))));
    const p = open();
    // A message that announces 4 MiB and never completes: its bytes stay unread. Then 600 chunks of 60 frames, each
    // frame one data byte and 255 of padding (16 KiB a chunk, 60 bytes of it data); each chunk is sent after the
    // server answered the one before (with window), so each arrives on its own.
    p.send(f(T.HEADERS, END_HEADERS, 1, requestBlock()), f(T.DATA, 0, 1, [0, 0, 0x40, 0, 0]));
    const one = f(T.DATA, 0x8, 1, Buffer.concat([Buffer.from([255, 7]), Buffer.alloc(255)]));
    const frame = Buffer.concat(Array.from({ length: 60 }, () => one));
    const isUpdate = (fr: Frame): boolean => fr.type === T.WINDOW_UPDATE && fr.stream === 1;
    for (let i = 0; i < 600; i++) {
      const start = p.frames.length;
      p.send(frame);
      await p.waitFrame(`WINDOW_UPDATE for chunk ${i}`, () => p.frames.slice(start).some(isUpdate));
    }
    fullGc();
    const alive = new Set(chunks.map((w) => w.deref()).filter((b): b is ArrayBuffer => b !== undefined));
    const pinned = [...alive].reduce((sum, b) => sum + b.byteLength, 0);
    expect(chunks.length).toBeGreaterThanOrEqual(600);
    // Unread: 5 + 36,000 bytes. Before, every chunk (16 KiB each, 9 MiB in all) stayed alive.
    expect(pinned).toBeLessThan(256 * 1024);
    expect(p.frames.filter((fr) => fr.type === T.GOAWAY)).toEqual([]);
    await stillServes(h);
  });

  it('a peer that keeps its window shut and repeats its initial request gets the stream reset once queued responses pass the bound', async () => {
    // A CDS response of about 0.8 MiB.
    const server = await h.start({ clusters: Array.from({ length: 8000 }, (_, i) => cluster(`cluster-with-a-rather-long-name-number-${i}`)) });
    const p = open();
    const discovery = codec<Record<string, unknown>>(TYPE.discoveryRequest);
    // SETTINGS_INITIAL_WINDOW_SIZE 0: nothing can be sent on the stream, everything queues.
    p.send(f(T.SETTINGS, 0, 0, [0, 4, 0, 0, 0, 0]), f(T.HEADERS, END_HEADERS, 1, requestBlock()));
    const initial = grpcMessage(discovery.serialize({ node: { id: 'shut' }, type_url: CDS }));
    const cds = server.currentSnapshot().types[CDS];
    const responseBytes = [...(cds?.resources.values() ?? [])].reduce((sum, r) => sum + r.any.value.length, 0);
    expect(responseBytes).toBeGreaterThan(256 * 1024);
    // Enough requests for twice the bound (a response is larger than its resources' values alone).
    const requests = Math.ceil((2 * LIMITS.maxQueuedPerConnection) / responseBytes);
    p.send(...Array.from({ length: requests }, () => f(T.DATA, 0, 1, initial)));
    const rst = await p.waitFrame('RST_STREAM on the stream that queued too much', (fr) => fr.type === T.RST_STREAM && fr.stream === 1);
    expect(rst.payload.readUInt32BE(0)).toBe(E.ENHANCE_YOUR_CALM);
    expect(p.frames.filter((fr) => fr.type === T.GOAWAY)).toEqual([]);
    await stillServes(h, 8000);
  });

  it(`at most ${MAX_CONNECTIONS} connections are served at once; one more is closed, and a slot freed is served again`, async () => {
    await h.start({ clusters: [cluster('c1')] });
    const held = Array.from({ length: MAX_CONNECTIONS }, () => open());
    for (const [i, p] of held.entries()) await p.waitFrame(`server SETTINGS on connection ${i}`, (fr) => fr.type === T.SETTINGS && !(fr.flags & ACK));
    const extra = open();
    await extra.waitFrame('the connection past the limit closing', () => false).catch((err: Error) => expect(err.message).toMatch(/connection closed/));
    expect(extra.frames).toEqual([]);
    held[0]?.destroy();
    // The server counts the freed slot when its side of the socket has closed; try a few times, each waiting on an event.
    let served = false;
    for (let attempt = 0; attempt < 20 && !served; attempt++) {
      const q = open();
      served = await q
        .waitFrame('server SETTINGS', (fr) => fr.type === T.SETTINGS && !(fr.flags & ACK))
        .then(
          () => true,
          () => false,
        );
      q.destroy();
    }
    expect(served).toBe(true);
  });

  it('a request with a very long :path gets UNIMPLEMENTED with a short status message, and the connection stays up', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const session = http2.connect('http://localhost', { createConnection: () => net.connect(h.socketPath) });
    session.on('error', () => undefined);
    let goaway = false;
    session.on('goaway', () => (goaway = true));
    try {
      const headers = await within(
        'the response to a request with a 20,000-character path',
        new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          const req = session.request({ ':method': 'POST', ':path': '/' + 'a'.repeat(20_000), 'content-type': 'application/grpc' });
          req.on('response', resolve);
          req.on('error', reject);
          req.end();
        }),
      );
      expect(headers['grpc-status']).toBe('12');
      const message = decodeURIComponent(String(headers['grpc-message']));
      expect(message.length).toBeLessThanOrEqual(MAX_STATUS_MESSAGE_CHARS + 3);
      expect(message).toMatch(/^unknown method \/aaa/);
      // The connection still serves: a PING is answered.
      await within('a PING answer', new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve()))));
      expect(goaway).toBe(false);
    } finally {
      session.destroy();
    }
    await stillServes(h);
  });

  it('a request sent one byte per write is parsed whole and answered', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const p = open(true);
    const discovery = codec<Record<string, unknown>>(TYPE.discoveryRequest);
    const bytes = Buffer.concat([
      PREFACE,
      f(T.SETTINGS, 0, 0),
      f(T.HEADERS, END_HEADERS, 1, requestBlock()),
      f(T.DATA, 0, 1, grpcMessage(discovery.serialize({ node: { id: 'slow' }, type_url: CDS }))),
    ]);
    for (let i = 0; i < bytes.length; i++) p.send(bytes.subarray(i, i + 1));
    await p.waitFrame('a DATA frame with the CDS response', (fr) => fr.type === T.DATA && fr.stream === 1);
    expect(p.frames.filter((fr) => fr.type === T.GOAWAY)).toEqual([]);
  });

  it('random frames after a valid start never crash the server (seeded)', async () => {
    await h.start({ clusters: [cluster('c1')] });
    for (let seed = 1; seed <= 200; seed++) {
      const rand = prng(seed);
      const int = (n: number): number => Math.floor(rand() * n);
      const p = open();
      const frames: Buffer[] = [];
      if (rand() < 0.5) frames.push(f(T.HEADERS, END_HEADERS, 1, requestBlock()));
      for (let i = 0; i < 1 + int(20); i++) {
        const payload = Buffer.from(Array.from({ length: int(40) }, () => int(256)));
        frames.push(f(int(12), int(256), int(4) === 0 ? 0 : 1 + int(8), payload));
      }
      p.send(...frames, f(T.PING, 0, 0, Buffer.from('fuzzdone')));
      // Either the server answered the closing PING (the frames were harmless) or ended the connection with GOAWAY.
      await p
        .waitFrame(`PING ACK or GOAWAY (seed ${seed})`, (fr) => fr.type === T.GOAWAY || (fr.type === T.PING && (fr.flags & ACK) !== 0))
        .catch((err: Error) => {
          if (!p.closed) throw err;
        });
      p.destroy();
    }
    await stillServes(h);
  });
});
