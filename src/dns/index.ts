// meshlet's DNS server (docs/dns.md): answers the names of egress
// routes with their listen address and forwards every other query to the
// pod's own resolvers. `meshlet run` starts it when `dns.enabled`, and calls
// update() on every config reload.
import type { MeshConfig } from '../config/model.js';
import { DNS_V6_ADDRESS } from '../config/constants.js';
import type { Logger } from '../log.js';
import { decide, serverFailure } from './answer.js';
import { createForwarder, type Forwarder } from './forward.js';
import { parseResolvConf, type ResolvConf, type Upstream } from './resolv.js';
import { DEFAULT_LIMITS, DnsListeners, type ListenAddress, type Peer, type ServerLimits } from './server.js';
import { buildNameTable, type NameTable } from './table.js';
const { readFileSync } = process.getBuiltinModule('node:fs');

export { buildNameTable } from './table.js';
export { parseResolvConf } from './resolv.js';

/** The IPv6 side of the server: ip6tables sends IPv6 DNS here (src/iptables/dns.ts). */

export interface DnsDeps {
  readFile(path: string): string;
  /** The uid this process runs as; undefined where there are no uids. */
  uid(): number | undefined;
}

export const systemDeps: DnsDeps = {
  readFile: (p) => readFileSync(p, 'utf8'),
  uid: () => process.getuid?.(),
};

export interface DnsOptions {
  limits?: ServerLimits;
  upstreamTimeoutMs?: number;
  /** Forwarded queries in progress; more get SERVFAIL at once. */
  maxInFlight?: number;
}

/** Every query lands in exactly one of the other counters. */
export interface DnsStats {
  queries: number;
  /** Route names, answered by us. */
  answered: number;
  /** Relayed replies from a resolver. */
  forwarded: number;
  /** Replies we made up: FORMERR, NOTIMP, BADVERS, and SERVFAIL when no resolver answered. */
  errors: number;
  dropped: number;
  /** Our own forwarded queries that came back to us (meshlet's uid is not exempt). */
  loops: number;
}

type DnsSettings = NonNullable<MeshConfig['dns']>;

/**
 * Why meshlet must not serve DNS as `uid`, or undefined. The rules exempt
 * dns.meshletUid and proxy.uid; from any other uid, every forwarded query
 * would be redirected straight back to us.
 */
export function uidProblem(config: MeshConfig, uid: number | undefined): string | undefined {
  const dns = config.dns;
  if (!dns || uid === undefined || uid === dns.meshletUid || uid === config.proxy.uid) return undefined;
  const exempt =
    dns.meshletUid === config.proxy.uid
      ? `uid ${dns.meshletUid} (proxy.uid and dns.meshletUid)`
      : `uids ${config.proxy.uid} (proxy.uid) and ${dns.meshletUid} (dns.meshletUid)`;
  return (
    `meshlet runs as uid ${uid}, but only ${exempt} bypass the DNS redirection, so every forwarded query would come back to meshlet. Set ` +
    `dns.meshletUid: ${uid} and re-run \`meshlet init\`, or run meshlet as uid ${dns.meshletUid}`
  );
}

/** The resolvers to forward to: the configured ones, else resolv.conf's, never our own listen addresses. */
export function chooseUpstreams(dns: DnsSettings, resolv: ResolvConf): { upstreams: Upstream[]; dropped: Upstream[] } {
  const all = dns.upstreams.length > 0 ? dns.upstreams : resolv.nameservers;
  const self = (u: Upstream): boolean => u.port === dns.address.port && (u.ip === dns.address.ip || u.ip === DNS_V6_ADDRESS);
  return { upstreams: all.filter((u) => !self(u)), dropped: all.filter(self) };
}

export class DnsService {
  private table: NameTable;
  private ttl: number;
  private upstreams: Upstream[] = [];
  private resolv: ResolvConf;
  private resolvPath: string;
  private readonly forwarder: Forwarder;
  private readonly listeners: DnsListeners;
  readonly stats: DnsStats = { queries: 0, answered: 0, forwarded: 0, errors: 0, dropped: 0, loops: 0 };
  private readonly maxInFlight: number;
  private lastKey = '';

  private constructor(
    config: MeshConfig,
    private readonly log: Logger,
    private readonly deps: DnsDeps,
    opts: DnsOptions,
  ) {
    const dns = settings(config);
    this.resolvPath = dns.resolvConf;
    this.resolv = this.readResolv(dns.resolvConf);
    this.table = buildNameTable(config.egress.routes, this.resolv.search);
    this.ttl = dns.ttl;
    this.setUpstreams(dns);
    this.lastKey = servedKey(config);
    this.maxInFlight = opts.maxInFlight ?? 512;
    this.forwarder = createForwarder({
      upstreams: () => this.upstreams,
      ...(opts.upstreamTimeoutMs === undefined ? {} : { timeoutMs: opts.upstreamTimeoutMs }),
    });
    this.listeners = new DnsListeners((m, p) => this.handle(m, p), log, opts.limits ?? DEFAULT_LIMITS);
  }

  /**
   * Checks the uid, reads resolv.conf, binds UDP and TCP on dns.address and,
   * when the kernel has IPv6, on [::1] at the same port. Throws on a bad uid
   * or when dns.address cannot be bound.
   */
  static async start(config: MeshConfig, log: Logger, deps: DnsDeps = systemDeps, opts: DnsOptions = {}): Promise<DnsService> {
    const problem = uidProblem(config, deps.uid());
    if (problem) throw new Error(problem);
    const svc = new DnsService(config, log, deps, opts);
    const { address } = settings(config);
    await svc.listeners.listen(address);
    try {
      await svc.listeners.listen({ ip: DNS_V6_ADDRESS, port: address.port });
    } catch (err) {
      // No IPv6 in the kernel means no ip6tables rules either (src/iptables/plan.ts skips the family).
      log.warn({ err: (err as Error).message }, `dns: not listening on [${DNS_V6_ADDRESS}]:${address.port}; IPv6 DNS from the app will fail`);
    }
    log.info(
      { listen: svc.listeners.addresses(), upstreams: svc.upstreams.map(fmt), search: svc.resolv.search, ndots: svc.resolv.ndots, names: svc.table.size },
      'dns server listening',
    );
    return svc;
  }

  /** A reload: new names, TTL and upstreams take effect for the next query. */
  update(config: MeshConfig): void {
    const dns = config.dns;
    if (!dns) return; // turning DNS off is restart-only (it changes the iptables rules)
    // Every reload (certificates too) lands here; only a change to what we serve is worth a rebuild.
    const key = servedKey(config);
    if (key === this.lastKey) return;
    this.lastKey = key;
    if (dns.resolvConf !== this.resolvPath) {
      this.resolvPath = dns.resolvConf;
      this.resolv = this.readResolv(dns.resolvConf);
    }
    this.table = buildNameTable(config.egress.routes, this.resolv.search);
    this.ttl = dns.ttl;
    this.setUpstreams(dns);
    this.log.info({ names: this.table.size, upstreams: this.upstreams.map(fmt) }, 'dns name table reloaded');
  }

  names(): [string, string][] {
    return this.table.entries();
  }

  get resolvConf(): ResolvConf {
    return this.resolv;
  }

  async close(): Promise<void> {
    await this.listeners.close();
  }

  addresses(): string[] {
    return this.listeners.addresses();
  }

  private readResolv(path: string): ResolvConf {
    let text = '';
    try {
      text = this.deps.readFile(path);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, path }, 'dns: cannot read resolv.conf; no search domains, resolvers default to the local machine');
    }
    return parseResolvConf(text);
  }

  private setUpstreams(dns: DnsSettings): void {
    const { upstreams, dropped } = chooseUpstreams(dns, this.resolv);
    if (dropped.length > 0) this.log.warn({ dropped: dropped.map(fmt) }, 'dns: ignoring resolvers that are meshlet itself');
    if (upstreams.length === 0) this.log.error('dns: no resolver to forward to; every name that is not a route name gets SERVFAIL');
    this.upstreams = upstreams;
  }

  private async handle(message: Uint8Array, peer: Peer): Promise<Uint8Array | undefined> {
    this.stats.queries++;
    if (this.forwarder.owns(peer.transport, peer.address, peer.port)) {
      this.stats.loops++;
      this.log.error({ peer }, `dns: a forwarded query came back to meshlet; its uid is not exempt from the redirection (dns.meshletUid). Dropped`);
      return undefined;
    }
    const d = decide(message, { table: this.table, ttl: this.ttl });
    if (d.kind === 'drop') {
      this.stats.dropped++;
      this.log.debug({ peer, reason: d.reason }, 'dns: dropped');
      return undefined;
    }
    if (d.kind === 'answer') {
      if (d.route === undefined) this.stats.errors++;
      else this.stats.answered++;
      this.log.debug({ qname: d.qname, route: d.route, rcode: d.rcode, transport: peer.transport }, 'dns: answered');
      return d.response;
    }
    if (this.forwarder.inFlight >= this.maxInFlight) {
      this.stats.errors++;
      return serverFailure(d.query);
    }
    const reply = await this.forwarder.forward(message, d.query, peer.transport);
    this.log.debug({ qname: d.qname, transport: peer.transport, ok: reply !== undefined }, 'dns: forwarded');
    if (reply) {
      this.stats.forwarded++;
      return reply;
    }
    this.stats.errors++;
    return serverFailure(d.query);
  }
}

/** Everything the server's behaviour depends on. */
function servedKey(config: MeshConfig): string {
  return JSON.stringify([config.dns, config.egress.routes.map((r) => [r.name, r.listenIp, r.names])]);
}

function settings(config: MeshConfig): DnsSettings {
  if (!config.dns) throw new Error('internal: the DNS server needs dns.enabled');
  return config.dns;
}

function fmt(u: ListenAddress): string {
  return u.ip.includes(':') ? `[${u.ip}]:${u.port}` : `${u.ip}:${u.port}`;
}
