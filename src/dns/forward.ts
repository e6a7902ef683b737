// Forwarding to the pod's original resolvers. The query is relayed byte for
// byte (its ID, flags and EDNS options unchanged) over the transport the app
// used, and the first valid reply is relayed back as is. Resolvers are tried
// in order, each with a deadline, as glibc does without `rotate`.
//
// These sockets belong to meshlet's uid, which `meshlet init` exempts from
// the DNS redirection (dns.meshletUid); otherwise each forwarded query would
// come straight back to us. The local addresses and ports of in-flight
// sockets are kept so that such a loop is recognised and broken instead of
// amplified.
import { FrameReader, frame } from './frame.js';
import type { Upstream } from './resolv.js';
import { DnsFormatError, HEADER_LENGTH, decodeHeader, decodeQuestions, sameName, type Message, type Question } from './wire.js';
const dgram = process.getBuiltinModule('node:dgram');
const net = process.getBuiltinModule('node:net');

export type Transport = 'udp' | 'tcp';

export interface Forwarder {
  /** The reply, or undefined when no resolver gave a valid one in time. */
  forward(packet: Uint8Array, query: Message, transport: Transport): Promise<Uint8Array | undefined>;
  /** Whether `address` and `port` are the local address and port of one of our own in-flight upstream sockets. */
  owns(transport: Transport, address: string, port: number): boolean;
  readonly inFlight: number;
}

export interface ForwarderOptions {
  upstreams: () => readonly Upstream[];
  /** Per resolver. Shorter than a client's own timeout (glibc: 5 s), so it gets SERVFAIL, not silence. */
  timeoutMs?: number;
}

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 2000;

/**
 * A reply answers the query: same ID, a response, same question (RFC 5452
 * section 9.1). The ID, the QR bit and the question count come from the
 * header before anything else is read, and only the question is decoded:
 * whoever can answer the forwarded query (any host on the path) gets no
 * decoding work out of a reply that is not the one meshlet waits for.
 */
export function answersQuery(reply: Uint8Array, query: Message): boolean {
  if (reply.length < HEADER_LENGTH) return false;
  const head = decodeHeader(reply);
  if (!head.qr || head.id !== query.header.id || head.counts[0] > 1) return false;
  let r: Question | undefined;
  try {
    r = decodeQuestions(reply)[0];
  } catch (err) {
    if (err instanceof DnsFormatError) return false;
    throw err;
  }
  const q = query.questions[0];
  // A FORMERR/NOTIMP reply may carry no question at all.
  if (r === undefined) return head.rcode !== 0;
  return q !== undefined && r.type === q.type && r.class === q.class && sameName(r.name, q.name);
}

export function createForwarder(opts: ForwarderOptions): Forwarder {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
  // Keyed by address and port: the app can bind the same port on another address (or family) and must not pass for us.
  const ends: Record<Transport, Map<string, number>> = { udp: new Map(), tcp: new Map() };
  let inFlight = 0;
  const hold: Hold = (t, address, port) => {
    const key = endKey(address, port);
    ends[t].set(key, (ends[t].get(key) ?? 0) + 1);
    return () => {
      const n = (ends[t].get(key) ?? 1) - 1;
      if (n <= 0) ends[t].delete(key);
      else ends[t].set(key, n);
    };
  };
  return {
    get inFlight() {
      return inFlight;
    },
    owns: (t, address, port) => ends[t].has(endKey(address, port)),
    async forward(packet, query, transport) {
      inFlight++;
      try {
        for (const u of opts.upstreams()) {
          const reply = transport === 'udp' ? await viaUdp(u, packet, query, timeoutMs, hold) : await viaTcp(u, packet, query, timeoutMs, hold);
          if (reply) return reply;
        }
        return undefined;
      } finally {
        inFlight--;
      }
    },
  };
}

type Hold = (t: Transport, address: string, port: number) => () => void;

/** One socket end; an IPv4 address the kernel reports IPv4-mapped counts as the same end. */
function endKey(address: string, port: number): string {
  return `${address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address} ${port}`;
}

/** What a transport does with its one try at one resolver. */
interface Attempt {
  /** Settles the try once: the reply, or undefined to move on to the next resolver. */
  finish: (reply: Uint8Array | undefined) => void;
  /** Counts the socket's local address and port as ours (loop detection) until the try settles. */
  own: (t: Transport, address: string, port: number) => void;
}

/**
 * One try at one resolver, for either transport: `open` starts it and returns
 * how to close its socket. It settles once, with the first valid reply or
 * with undefined at the deadline or on a socket error, and always releases
 * the local port and closes the socket.
 */
function attempt(timeoutMs: number, hold: Hold, open: (a: Attempt) => () => void): Promise<Uint8Array | undefined> {
  return new Promise((resolve) => {
    let release = (): void => undefined;
    let close = (): void => undefined;
    let done = false;
    const a: Attempt = {
      finish: (reply) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        release();
        close();
        resolve(reply);
      },
      own: (t, address, port) => {
        if (!done) release = hold(t, address, port);
      },
    };
    const timer = setTimeout(() => a.finish(undefined), timeoutMs);
    close = open(a);
    if (done) close();
  });
}

function viaUdp(u: Upstream, packet: Uint8Array, query: Message, timeoutMs: number, hold: Hold): Promise<Uint8Array | undefined> {
  return attempt(timeoutMs, hold, ({ finish, own }) => {
    const sock = dgram.createSocket(net.isIPv6(u.ip.split('%')[0] ?? '') ? 'udp6' : 'udp4');
    // ECONNREFUSED (ICMP port unreachable) on the connected socket: try the next resolver now.
    sock.on('error', () => finish(undefined));
    sock.on('message', (msg) => {
      // connect() already filters other sources; a reply to some other query is ignored, not accepted.
      if (answersQuery(msg, query)) finish(new Uint8Array(msg));
    });
    sock.bind(0, () => {
      sock.connect(u.port, u.ip, (err?: Error) => {
        if (err) return finish(undefined);
        // Connected, the socket has the local address its query leaves from, which a looped query arrives from.
        const local = sock.address();
        own('udp', local.address, local.port);
        sock.send(packet, (e) => e && finish(undefined));
      });
    });
    return () => sock.close();
  });
}

function viaTcp(u: Upstream, packet: Uint8Array, query: Message, timeoutMs: number, hold: Hold): Promise<Uint8Array | undefined> {
  return attempt(timeoutMs, hold, ({ finish, own }) => {
    const sock = net.connect({ host: u.ip, port: u.port });
    const reader = new FrameReader();
    sock.on('error', () => finish(undefined));
    sock.on('close', () => finish(undefined));
    sock.on('connect', () => {
      if (sock.localAddress !== undefined && sock.localPort !== undefined) own('tcp', sock.localAddress, sock.localPort);
      sock.write(frame(packet));
    });
    sock.on('data', (chunk: Buffer) => {
      for (const msg of reader.push(chunk)) if (answersQuery(msg, query)) return finish(msg);
    });
    return () => sock.destroy();
  });
}
