// Forwarding to the pod's original resolvers. The query is relayed byte for
// byte (its ID, flags and EDNS options unchanged) over the transport the app
// used, and the first valid reply is relayed back as is. Resolvers are tried
// in order, each with a deadline, as glibc does without `rotate`.
//
// These sockets belong to meshlet's uid, which `meshlet init` exempts from
// the DNS redirection (dns.meshletUid); otherwise each forwarded query would
// come straight back to us. The local ports of in-flight sockets are kept so
// that such a loop is recognised and broken instead of amplified.
import { FrameReader, frame } from './frame.js';
import type { Upstream } from './resolv.js';
import { DnsFormatError, decodeMessage, sameName, type Message } from './wire.js';
const dgram = process.getBuiltinModule('node:dgram');
const net = process.getBuiltinModule('node:net');

export type Transport = 'udp' | 'tcp';

export interface Forwarder {
  /** The reply, or undefined when no resolver gave a valid one in time. */
  forward(packet: Uint8Array, query: Message, transport: Transport): Promise<Uint8Array | undefined>;
  /** Whether `port` is the local port of one of our own in-flight upstream sockets. */
  ownsPort(transport: Transport, port: number): boolean;
  readonly inFlight: number;
}

export interface ForwarderOptions {
  upstreams: () => readonly Upstream[];
  /** Per resolver. Shorter than a client's own timeout (glibc: 5 s), so it gets SERVFAIL, not silence. */
  timeoutMs?: number;
}

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 2000;

/** A reply answers the query: same ID, a response, same question (RFC 5452 section 9.1). */
export function answersQuery(reply: Uint8Array, query: Message): boolean {
  let m: Message;
  try {
    m = decodeMessage(reply);
  } catch (err) {
    if (err instanceof DnsFormatError) return false;
    throw err;
  }
  const q = query.questions[0];
  const r = m.questions[0];
  if (!m.header.qr || m.header.id !== query.header.id) return false;
  // A FORMERR/NOTIMP reply may carry no question at all.
  if (r === undefined) return m.questions.length === 0 && m.header.rcode !== 0;
  return q !== undefined && m.questions.length === 1 && r.type === q.type && r.class === q.class && sameName(r.name, q.name);
}

export function createForwarder(opts: ForwarderOptions): Forwarder {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
  const ports: Record<Transport, Map<number, number>> = { udp: new Map(), tcp: new Map() };
  let inFlight = 0;
  const hold = (t: Transport, port: number): (() => void) => {
    ports[t].set(port, (ports[t].get(port) ?? 0) + 1);
    return () => {
      const n = (ports[t].get(port) ?? 1) - 1;
      if (n <= 0) ports[t].delete(port);
      else ports[t].set(port, n);
    };
  };
  return {
    get inFlight() {
      return inFlight;
    },
    ownsPort: (t, port) => ports[t].has(port),
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

type Hold = (t: Transport, port: number) => () => void;

/** What a transport does with its one try at one resolver. */
interface Attempt {
  /** Settles the try once: the reply, or undefined to move on to the next resolver. */
  finish: (reply: Uint8Array | undefined) => void;
  /** Counts the socket's local port as ours (loop detection) until the try settles. */
  own: (t: Transport, port: number) => void;
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
      own: (t, port) => {
        if (!done) release = hold(t, port);
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
      own('udp', sock.address().port);
      sock.connect(u.port, u.ip, (err?: Error) => {
        if (err) finish(undefined);
        else sock.send(packet, (e) => e && finish(undefined));
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
      if (sock.localPort !== undefined) own('tcp', sock.localPort);
      sock.write(frame(packet));
    });
    sock.on('data', (chunk: Buffer) => {
      for (const msg of reader.push(chunk)) if (answersQuery(msg, query)) return finish(msg);
    });
    return () => sock.destroy();
  });
}
