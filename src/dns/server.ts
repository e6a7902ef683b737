// The sockets: UDP and TCP on each listen address. Every message goes to one
// handler; what it returns is sent back. A handler error or a socket error
// is logged and never takes the process down.
import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from '../log.js';
import { FrameReader, frame } from './frame.js';
import type { Transport } from './forward.js';

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
  /** Concurrent TCP connections. */
  maxConnections: number;
  /** A TCP connection with nothing to do for this long is closed (RFC 7766 6.2.3). */
  idleMs: number;
  /** Queries in progress on one TCP connection; a client that pipelines more is cut off. */
  maxPipelined: number;
}

export const DEFAULT_LIMITS: ServerLimits = { maxConnections: 256, idleMs: 10_000, maxPipelined: 32 };

export class DnsListeners {
  private readonly udp: dgram.Socket[] = [];
  private readonly tcp: net.Server[] = [];
  private readonly conns = new Set<net.Socket>();

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

  private bindUdp(addr: ListenAddress): Promise<dgram.Socket> {
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

  private onDatagram(sock: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.handler(new Uint8Array(msg), { transport: 'udp', address: rinfo.address, port: rinfo.port }).then(
      (reply) => {
        if (reply) sock.send(reply, rinfo.port, rinfo.address, (err) => err && this.log.debug({ err: err.message }, 'dns udp send failed'));
      },
      (err: unknown) => this.log.error({ err: (err as Error).message }, 'dns handler failed'),
    );
  }

  private bindTcp(addr: ListenAddress): Promise<net.Server> {
    const server = net.createServer((s) => this.onConnection(s));
    server.maxConnections = this.limits.maxConnections;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: addr.ip, port: addr.port, exclusive: true }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.warn({ err: err.message }, 'dns tcp server error'));
        resolve(server);
      });
    });
  }

  private onConnection(sock: net.Socket): void {
    this.conns.add(sock);
    const reader = new FrameReader();
    const peer: Peer = { transport: 'tcp', address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 };
    let pending = 0;
    sock.setTimeout(this.limits.idleMs, () => sock.destroy());
    sock.on('error', () => undefined);
    sock.on('close', () => this.conns.delete(sock));
    sock.on('data', (chunk: Buffer) => {
      for (const msg of reader.push(chunk)) {
        if (++pending > this.limits.maxPipelined) {
          sock.destroy();
          return;
        }
        this.handler(msg, peer).then(
          (reply) => {
            pending--;
            if (reply && !sock.destroyed) sock.write(frame(reply));
          },
          (err: unknown) => {
            pending--;
            this.log.error({ err: (err as Error).message }, 'dns handler failed');
          },
        );
      }
    });
  }

  /** Where each socket is bound (UDP first), for logs and tests. */
  addresses(): string[] {
    const fmt = (a: net.AddressInfo): string => (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
    return [...this.udp.map((s) => `udp ${fmt(s.address())}`), ...this.tcp.map((s) => `tcp ${fmt(s.address() as net.AddressInfo)}`)];
  }

  async close(): Promise<void> {
    for (const s of this.udp.splice(0)) s.close();
    for (const c of this.conns) c.destroy();
    await Promise.all(this.tcp.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
