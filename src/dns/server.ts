// The sockets: UDP and TCP on each listen address. Every message goes to one
// handler; what it returns is sent back. A handler error or a socket error
// is logged and never takes the process down.
import type { Logger } from '../log.js';
import { FrameReader, frame } from './frame.js';
import type { Transport } from './forward.js';
import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import type { AddressInfo, Server as TcpServer, Socket as TcpSocket } from 'node:net';
const dgram = process.getBuiltinModule('node:dgram');
const net = process.getBuiltinModule('node:net');

export interface Peer {
  transport: Transport;
  address: string;
  port: number;
}

export type Handler = (message: Uint8Array, peer: Peer) => Promise<Uint8Array | undefined>;

export interface ListenAddress {
  ip: string;
  port: number;
}

export interface ServerLimits {
  /** Concurrent TCP connections, over all listen addresses. */
  maxConnections: number;
  /** A TCP connection with no query in progress for this long is closed (RFC 7766 6.2.3). */
  idleMs: number;
  /**
   * A message must arrive whole within this long of its first byte. The
   * deadline is per message, not per byte: a client trickling one byte at a
   * time cannot keep its connection.
   */
  messageMs?: number;
  /** Queries in progress on one TCP connection; a client that pipelines more is cut off. */
  maxPipelined: number;
  /**
   * Answer bytes one TCP connection gets. The answer that reaches this is the
   * connection's last: meshlet then closes its side (FIN), and resets the
   * connection if the client has not closed within messageMs. Answers a
   * client does not read wait in the kernel's buffers (megabytes per socket,
   * charged to meshlet's container), so this is what one connection can hold;
   * a client that wants more opens another connection (RFC 7766 6.2.3).
   */
  maxAnswerBytes?: number;
}

export const DEFAULT_LIMITS: ServerLimits = { maxConnections: 256, idleMs: 10_000, messageMs: 2_000, maxPipelined: 32, maxAnswerBytes: 128 * 1024 };

interface ConnState {
  /** Queries handed to the handler and not answered yet. */
  pending: number;
  /** When the connection last completed a message or got an answer. */
  lastActive: number;
}

export class DnsListeners {
  private readonly udp: UdpSocket[] = [];
  private readonly tcp: TcpServer[] = [];
  private readonly conns = new Map<TcpSocket, ConnState>();

  constructor(
    private readonly handler: Handler,
    private readonly log: Logger,
    private readonly limits: ServerLimits = DEFAULT_LIMITS,
  ) {}

  /** Binds UDP and TCP on `addr`; rejects (and binds nothing) if either fails. */
  async listen(addr: ListenAddress): Promise<void> {
    const udp = await this.bindUdp(addr);
    try {
      this.tcp.push(await this.bindTcp(addr));
      this.udp.push(udp);
    } catch (err) {
      udp.close();
      throw err;
    }
  }

  private bindUdp(addr: ListenAddress): Promise<UdpSocket> {
    const sock = dgram.createSocket(net.isIPv6(addr.ip) ? 'udp6' : 'udp4');
    return new Promise((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(addr.port, addr.ip, () => {
        sock.off('error', reject);
        sock.on('error', (err) => this.log.warn({ err: err.message, address: addr.ip }, 'dns udp socket error'));
        sock.on('message', (msg, rinfo) => this.onDatagram(sock, msg, rinfo));
        resolve(sock);
      });
    });
  }

  private onDatagram(sock: UdpSocket, msg: Buffer, rinfo: RemoteInfo): void {
    this.handler(new Uint8Array(msg), { transport: 'udp', address: rinfo.address, port: rinfo.port }).then(
      (reply) => {
        if (reply) sock.send(reply, rinfo.port, rinfo.address, (err) => err && this.log.debug({ err: err.message }, 'dns udp send failed'));
      },
      (err: unknown) => this.log.error({ err: (err as Error).message }, 'dns handler failed'),
    );
  }

  private bindTcp(addr: ListenAddress): Promise<TcpServer> {
    const server = net.createServer((s) => this.onConnection(s));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: addr.ip, port: addr.port, exclusive: true }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.warn({ err: err.message }, 'dns tcp server error'));
        resolve(server);
      });
    });
  }

  /**
   * At the cap, a new client takes the slot of the connection that has been
   * quiet longest and has no query in progress (RFC 7766 6.2.3 lets a busy
   * server close idle connections), so clients that merely hold connections
   * cannot lock out others. Only when every slot is busy answering is the
   * new client turned away.
   */
  private makeRoom(): boolean {
    if (this.conns.size < this.limits.maxConnections) return true;
    let victim: TcpSocket | undefined;
    let oldest = Infinity;
    for (const [s, st] of this.conns) {
      if (st.pending === 0 && st.lastActive < oldest) {
        victim = s;
        oldest = st.lastActive;
      }
    }
    if (!victim) return false;
    this.conns.delete(victim);
    victim.resetAndDestroy();
    return true;
  }

  /**
   * Every connection meshlet ends on its own is reset (RST), unless it hangs
   * up gracefully (below): a plain close would leave whatever the client has
   * not read in the kernel, sent on for minutes by a socket nobody holds.
   */
  private onConnection(sock: TcpSocket): void {
    sock.on('error', () => undefined);
    if (!this.makeRoom()) {
      sock.resetAndDestroy();
      return;
    }
    const state: ConnState = { pending: 0, lastActive: Date.now() };
    this.conns.set(sock, state);
    const reader = new FrameReader();
    const peer: Peer = { transport: 'tcp', address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 };
    const messageMs = this.limits.messageMs ?? DEFAULT_LIMITS.messageMs ?? 2_000;
    const maxAnswerBytes = this.limits.maxAnswerBytes ?? DEFAULT_LIMITS.maxAnswerBytes ?? 128 * 1024;
    let timer: NodeJS.Timeout | undefined;
    const reset = (): void => void sock.resetAndDestroy();
    const arm = (ms: number | undefined, then = hangUp): void => {
      if (timer) clearTimeout(timer);
      timer = ms === undefined ? undefined : setTimeout(then, ms);
    };
    // Graceful: no more queries are read, FIN goes after the answers, and the client has messageMs to read them and
    // close; one that does not is reset.
    let closing = false;
    function hangUp(): void {
      if (closing) return;
      closing = true;
      sock.pause();
      sock.end();
      arm(messageMs, reset);
    }
    // Waiting for a message with nothing in progress: the idle limit applies.
    const settle = (): void => {
      if (!closing) arm(state.pending === 0 ? this.limits.idleMs : undefined);
    };
    let partial = false;
    let answered = 0;
    const send = (reply: Uint8Array): void => {
      const framed = frame(reply);
      answered += framed.length;
      sock.write(framed);
      if (answered >= maxAnswerBytes) hangUp();
    };
    arm(this.limits.idleMs);
    sock.on('close', () => {
      arm(undefined);
      if (this.conns.get(sock) === state) this.conns.delete(sock);
    });
    sock.on('data', (chunk: Buffer) => {
      const msgs = reader.push(chunk);
      for (const msg of msgs) {
        if (++state.pending > this.limits.maxPipelined) {
          reset();
          return;
        }
        state.lastActive = Date.now();
        this.handler(msg, peer).then(
          (reply) => {
            state.pending--;
            state.lastActive = Date.now();
            // After a hang-up, later answers are dropped: the client asks again on a new connection.
            if (reply && !closing && !sock.destroyed) send(reply);
            if (reader.buffered === 0 && !sock.destroyed) settle();
          },
          (err: unknown) => {
            state.pending--;
            this.log.error({ err: (err as Error).message }, 'dns handler failed');
            if (reader.buffered === 0 && !sock.destroyed) settle();
          },
        );
      }
      if (closing) return;
      // A message has begun: its deadline starts now and later bytes do not extend it.
      if (reader.buffered > 0) {
        if (msgs.length > 0 || !partial) arm(messageMs, reset);
        partial = true;
      } else {
        partial = false;
        settle();
      }
    });
  }

  /** Where each socket is bound (UDP first), for logs and tests. */
  addresses(): string[] {
    const fmt = (a: AddressInfo): string => (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
    return [...this.udp.map((s) => `udp ${fmt(s.address())}`), ...this.tcp.map((s) => `tcp ${fmt(s.address() as AddressInfo)}`)];
  }

  async close(): Promise<void> {
    for (const s of this.udp.splice(0)) s.close();
    for (const c of this.conns.keys()) c.resetAndDestroy();
    await Promise.all(this.tcp.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
