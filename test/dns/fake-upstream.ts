// A scriptable upstream resolver on loopback (UDP and TCP on one port), for
// the in-process server tests. By default it answers every A query with
// 198.18.9.9; `behave` changes what it does per query.
import dgram from 'node:dgram';
import net from 'node:net';
import { FrameReader, frame } from '../../src/dns/frame.js';
import { CLASS, TYPE, decodeMessage, encodeMessage, type Message } from '../../src/dns/wire.js';

export type Behaviour = 'answer' | 'silent' | 'truncate' | 'wrong-id-first' | 'many';

export interface FakeUpstream {
  port: number;
  /** Questions received, as "udp name" / "tcp name". */
  seen: string[];
  /** The exact bytes of the last reply sent. */
  lastReply: Uint8Array | undefined;
  behave: (qname: string, transport: 'udp' | 'tcp') => Behaviour;
  /** Called with each query's source: the forwarding socket's local address and port. */
  onQuery?: (from: { transport: 'udp' | 'tcp'; address: string; port: number }) => void;
  close(): Promise<void>;
}

export function replyTo(q: Message, addresses: string[], tc = false): Uint8Array {
  const question = q.questions[0];
  return encodeMessage({
    header: { ...q.header, qr: true, ra: true, tc, rcode: 0 },
    questions: q.questions,
    answers: question
      ? addresses.map((a) => ({ name: question.name, type: TYPE.A, class: CLASS.IN, ttl: 30, data: new Uint8Array(a.split('.').map(Number)) }))
      : [],
    authorities: [],
    additionals: [],
  });
}

export async function startFakeUpstream(host = '127.0.0.1'): Promise<FakeUpstream> {
  let udp = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const tcp = net.createServer();
  const conns = new Set<net.Socket>();
  const fake: FakeUpstream = {
    port: 0,
    seen: [],
    lastReply: undefined,
    behave: () => 'answer',
    close: async () => {
      udp.close();
      for (const c of conns) c.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
    },
  };
  const respond = (bytes: Uint8Array, transport: 'udp' | 'tcp', send: (b: Uint8Array) => void, address: string, port: number): void => {
    fake.onQuery?.({ transport, address, port });
    const q = decodeMessage(bytes);
    const name = Buffer.from(q.questions[0]?.name.map((l) => Buffer.from(l).toString('latin1')).join('.') ?? '').toString();
    fake.seen.push(`${transport} ${name}`);
    const how = fake.behave(name, transport);
    if (how === 'silent') return;
    if (how === 'wrong-id-first') send(replyTo({ ...q, header: { ...q.header, id: (q.header.id + 1) & 0xffff } }, ['198.18.6.6']));
    const many = Array.from({ length: 100 }, (_, i) => `198.18.7.${i}`);
    const reply = how === 'truncate' && transport === 'udp' ? replyTo(q, [], true) : replyTo(q, how === 'many' ? many : ['198.18.9.9']);
    fake.lastReply = reply;
    send(reply);
  };
  const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void =>
    respond(new Uint8Array(msg), 'udp', (b) => udp.send(b, rinfo.port, rinfo.address), rinfo.address, rinfo.port);
  udp.on('message', onMessage);
  tcp.on('connection', (s) => {
    conns.add(s);
    s.on('close', () => conns.delete(s));
    s.on('error', () => undefined);
    const reader = new FrameReader();
    s.on('data', (chunk: Buffer) => {
      for (const m of reader.push(chunk)) respond(m, 'tcp', (b) => s.write(frame(b)), s.remoteAddress ?? '', s.remotePort ?? 0);
    });
  });
  // DNS serves UDP and TCP on one port. The ephemeral UDP port may already be
  // held by some TCP socket; then take another UDP port and try again.
  for (let attempt = 0; ; attempt++) {
    await new Promise<void>((r) => udp.bind(0, host, () => r()));
    const port = udp.address().port;
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, host, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      fake.port = port;
      return fake;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) throw err;
      await new Promise<void>((r) => udp.close(() => r()));
      udp = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
      udp.on('message', onMessage);
    }
  }
}

/** One query over UDP from a fresh socket; the reply bytes, or undefined after `timeoutMs`. */
export function udpExchange(host: string, port: number, packet: Uint8Array, timeoutMs = 3000): Promise<Uint8Array | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(new Uint8Array(m));
    });
    s.send(packet, port, host);
  });
}

/** Sends `chunks` on one TCP connection and collects `want` framed replies. */
export function tcpExchange(host: string, port: number, chunks: Uint8Array[], want: number, timeoutMs = 3000): Promise<Uint8Array[]> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const reader = new FrameReader();
    const got: Uint8Array[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`got ${got.length} of ${want} replies`));
    }, timeoutMs);
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('connect', () => {
      for (const c of chunks) s.write(c);
    });
    s.on('data', (d: Buffer) => {
      got.push(...reader.push(d));
      if (got.length >= want) {
        clearTimeout(timer);
        s.end();
        resolve(got);
      }
    });
  });
}
