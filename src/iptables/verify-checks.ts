// The individual verification checks. Each makes one or two connections and
// compares what the probe saw with what the rules promise.
import type { MeshConfig, SocketAddress } from '../config/model.js';
import { cidrContains } from './addr.js';
import { resolversOf } from './outbound.js';
import { DNS_PORT } from './constants.js';
import { dnsExemptUids } from './dns.js';
import type { ConnectResult, DnsQueryResult, ProbeAccept } from './probe-script.js';
import type { VerifyCheck } from './verify.js';
const { isIP } = process.getBuiltinModule('node:net');

export interface Probe {
  /** Addresses of the temporary veth link, when it could be created. */
  peer: { v4: string; v6: string; remoteV4: string; remoteV6: string } | undefined;
  fromPod(host: string, port: number, asUid?: number): Promise<ConnectResult>;
  fromPeer(host: string, port: number, expectDrop?: boolean): Promise<ConnectResult>;
  waitAccept(match: (a: ProbeAccept) => boolean, timeoutMs: number): Promise<ProbeAccept | undefined>;
  /** One DNS query to host:53 from inside the pod, as `asUid`. */
  dnsQuery(host: string, transport: 'udp' | 'tcp', asUid: number): Promise<DnsQueryResult>;
}

const ACCEPT_WAIT_MS = 2000;
const PROBE_BANNER = 'meshlet-probe';

export async function verifyChecks(c: MeshConfig, probe: Probe, env: { v6: boolean; peerError: string | undefined }): Promise<VerifyCheck[]> {
  const out: VerifyCheck[] = [];
  const families: (4 | 6)[] = env.v6 ? [4, 6] : [4];
  const noPeer = (name: string): VerifyCheck => ({ name, status: 'skip', detail: env.peerError ?? 'no test peer' });
  for (const r of c.egress.routes.filter((x) => x.listenPort === undefined)) {
    out.push(
      await captured(
        `portless route ${r.name}: ${r.listenIp}:<any port> reaches port ${c.proxy.portlessEgressPort}`,
        probe,
        c.proxy.portlessEgressPort,
        r.listenIp,
        freePort(c, 0),
        () => probe.fromPod(r.listenIp, freePort(c, 0)),
      ),
    );
  }
  for (const f of families) {
    const peer = probe.peer;
    if (c.egress.capture) {
      const name = `IPv${f} egress capture`;
      if (!peer) out.push(noPeer(name));
      else out.push(...(await egressChecks(c, probe, f === 4 ? peer.remoteV4 : peer.remoteV6, name)));
    }
    if (c.dns) {
      const name = `IPv${f} DNS capture`;
      if (!peer) out.push(noPeer(name));
      else out.push(...(await dnsChecks(c, probe, f === 4 ? peer.remoteV4 : peer.remoteV6, name)));
    }
    if (c.ingress.mode === 'tproxy') {
      const name = `IPv${f} ingress tproxy`;
      if (!peer) out.push(noPeer(name));
      else out.push(...(await tproxyChecks(c, probe, f === 4 ? peer.v4 : peer.v6, name)));
    }
    if (c.ingress.mode === 'mapped') {
      const name = `IPv${f} ingress mapped`;
      if (!peer) out.push(noPeer(name));
      else out.push(...(await mappedChecks(c, probe, f === 4 ? peer.v4 : peer.v6, name)));
    }
  }
  return out;
}

/** A port for test connections that no rule treats specially. */
function freePort(c: MeshConfig, n: number): number {
  const special = new Set([DNS_PORT, ...c.egress.exclude.ports, ...c.ingress.ports.map((p) => p.port)]);
  let p = 18080 + n;
  while (special.has(p)) p++;
  return p;
}

async function captured(name: string, probe: Probe, listen: number, ip: string, port: number, dial: () => Promise<ConnectResult>): Promise<VerifyCheck> {
  const r = await dial();
  const seen = await probe.waitAccept((a) => a.listen === listen && sameAddr(a.origDst ?? a.local, ip, port), ACCEPT_WAIT_MS);
  if (r.result === 'connected' && seen) return { name, status: 'pass', detail: `captured with original destination ${fmt(ip, port)}` };
  return { name, status: 'fail', detail: `a connection to ${fmt(ip, port)} was not captured with its original destination (client: ${describe(r)})` };
}

function notCaptured(name: string, r: ConnectResult, target: string): VerifyCheck {
  const ok = r.result === 'refused' || (r.result === 'connected' && r.banner !== PROBE_BANNER);
  return { name, status: ok ? 'pass' : 'fail', detail: ok ? `${target} bypassed the proxy (${r.result})` : `${target} was captured or lost (${describe(r)})` };
}

async function egressChecks(c: MeshConfig, probe: Probe, remote: string, name: string): Promise<VerifyCheck[]> {
  const excluded = c.egress.exclude.cidrs.find((x) => cidrContains(x, remote));
  if (excluded) return [{ name, status: 'skip', detail: `the test address ${remote} is in the excluded CIDR ${excluded.text}` }];
  const port = freePort(c, 1);
  const out = [
    await captured(`${name}: outbound TCP reaches port ${c.proxy.outboundPort}`, probe, c.proxy.outboundPort, remote, port, () => probe.fromPod(remote, port)),
    notCaptured(`${name}: proxy uid ${c.proxy.uid} is exempt`, await probe.fromPod(remote, port, c.proxy.uid), `uid ${c.proxy.uid} to ${fmt(remote, port)}`),
  ];
  // Port 53 is exempt only towards the pod's resolvers. (With DNS capture on,
  // the app's port 53 goes to meshlet's server instead: the DNS checks.)
  if (!c.dns)
    out.push(
      await captured(`${name}: TCP ${DNS_PORT} to a host that is not a resolver is captured`, probe, c.proxy.outboundPort, remote, DNS_PORT, () =>
        probe.fromPod(remote, DNS_PORT),
      ),
    );
  const resolver = nonLoopbackResolver(c, remote);
  if (resolver)
    out.push(
      notCaptured(
        `${name}: DNS (TCP) to the resolver ${fmt(resolver.ip, resolver.port)} is exempt`,
        await probe.fromPod(resolver.ip, resolver.port),
        fmt(resolver.ip, resolver.port),
      ),
    );
  return out;
}

/** The first resolver of `remote`'s family that is not on loopback (loopback is never captured anyway). */
function nonLoopbackResolver(c: MeshConfig, remote: string): SocketAddress | undefined {
  const family = isIP(remote) as 4 | 6;
  return resolversOf(c, family).find((r) => !(family === 4 ? r.ip.startsWith('127.') : r.ip === '::1'));
}

/** A uid that the DNS rules do not exempt, to play the app. */
export function appUid(c: MeshConfig): number {
  const exempt = new Set(dnsExemptUids(c));
  let uid = 65534;
  while (exempt.has(uid)) uid--;
  return uid;
}

async function dnsChecks(c: MeshConfig, probe: Probe, remote: string, name: string): Promise<VerifyCheck[]> {
  const dns = c.dns;
  if (!dns) return [];
  const target = fmt(dns.address.ip, dns.address.port);
  const out: VerifyCheck[] = [];
  const app = appUid(c);
  for (const transport of ['udp', 'tcp'] as const) {
    const r = await probe.dnsQuery(remote, transport, app);
    const ok = r.result === 'answered' && r.banner === PROBE_BANNER && r.peer?.[0].replace(/^::ffff:/, '') === remote && r.peer[1] === DNS_PORT;
    out.push({
      name: `${name}: ${transport.toUpperCase()} ${DNS_PORT} from uid ${app} reaches ${target}`,
      status: ok ? 'pass' : 'fail',
      detail: ok
        ? `answered by the DNS address, seen as coming from ${fmt(remote, DNS_PORT)}`
        : `a query to ${fmt(remote, DNS_PORT)} was not redirected (${describeDns(r)})`,
    });
  }
  // With non-TCP dropped, the exempt uids' UDP DNS may only reach the resolvers.
  const exemptTarget = c.egress.nonTcp === 'drop' ? nonLoopbackResolver(c, remote)?.ip : remote;
  for (const uid of dnsExemptUids(c)) {
    if (exemptTarget === undefined) {
      out.push({ name: `${name}: uid ${uid} is exempt`, status: 'skip', detail: 'no resolver of this family outside loopback to send a query to' });
      continue;
    }
    // Nothing listens on the peer's port 53, so a query that really went
    // there is refused (ICMP port unreachable). A timeout is a failure too:
    // it is what a query redirected in nat but zoned in raw looks like (the
    // answer never finds its conntrack entry and is dropped).
    const r = await probe.dnsQuery(exemptTarget, 'udp', uid);
    const ok = r.result === 'refused' || (r.result === 'answered' && r.banner !== PROBE_BANNER);
    out.push({
      name: `${name}: uid ${uid} is exempt`,
      status: ok ? 'pass' : 'fail',
      detail: ok
        ? `uid ${uid}'s query went to ${fmt(exemptTarget, DNS_PORT)} itself (${r.result})`
        : `uid ${uid}'s query did not reach ${fmt(exemptTarget, DNS_PORT)} (${describeDns(r)}); it was redirected to ${target}, so its DNS would loop or fail`,
    });
  }
  return out;
}

function describeDns(r: DnsQueryResult): string {
  if (r.error) return `${r.result}: ${r.error}`;
  return r.result === 'answered' ? `answered by ${r.peer ? fmt(r.peer[0], r.peer[1]) : '?'} with banner "${r.banner ?? ''}"` : r.result;
}

async function tproxyChecks(c: MeshConfig, probe: Probe, pod: string, name: string): Promise<VerifyCheck[]> {
  const out: VerifyCheck[] = [];
  const plaintext = c.ingress.ports.filter((p) => p.policy === 'plaintext').map((p) => p.port);
  const proxied = c.ingress.ports.filter((p) => p.policy !== 'plaintext').map((p) => p.port);
  const target = proxied[0] ?? (c.ingress.default === 'plaintext' ? undefined : freePort(c, 2));
  if (target !== undefined) {
    out.push(
      await captured(`${name}: inbound TCP reaches port ${c.proxy.inboundPort}`, probe, c.proxy.inboundPort, pod, target, () => probe.fromPeer(pod, target)),
    );
    const guard = await probe.fromPod(pod, c.proxy.inboundPort, c.proxy.uid);
    out.push({
      name: `${name}: the proxy cannot dial its own inbound port`,
      status: guard.result === 'refused' ? 'pass' : 'fail',
      detail: guard.result === 'refused' ? 'refused by the loop guard' : `uid ${c.proxy.uid} reached ${fmt(pod, c.proxy.inboundPort)} (${describe(guard)})`,
    });
  }
  const open = c.ingress.default === 'plaintext' ? freePort(c, 3) : plaintext[0];
  if (open !== undefined) out.push(notCaptured(`${name}: plaintext port ${open} is not redirected`, await probe.fromPeer(pod, open), fmt(pod, open)));
  return out;
}

async function mappedChecks(c: MeshConfig, probe: Probe, pod: string, name: string): Promise<VerifyCheck[]> {
  const out: VerifyCheck[] = [];
  for (const p of c.ingress.ports.filter((x) => x.policy !== 'plaintext').slice(0, 1)) {
    const direct = await probe.fromPeer(pod, p.port, true);
    out.push({
      name: `${name}: direct access to app port ${p.port} is dropped`,
      status: direct.result === 'timeout' ? 'pass' : 'fail',
      detail: direct.result === 'timeout' ? 'the SYN was dropped' : `expected a drop, got ${describe(direct)}`,
    });
    if (p.mappedPort === undefined) continue;
    const mapped = await probe.fromPeer(pod, p.mappedPort);
    out.push({
      name: `${name}: mapped port ${p.mappedPort} is open`,
      status: mapped.result === 'timeout' ? 'fail' : 'pass',
      detail: mapped.result === 'timeout' ? 'the SYN was dropped' : `reachable (${mapped.result})`,
    });
  }
  return out;
}

function sameAddr(a: [string, number] | null, ip: string, port: number): boolean {
  return a !== null && a[1] === port && a[0].replace(/^::ffff:/, '') === ip;
}

function fmt(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function describe(r: ConnectResult): string {
  return r.error ? `${r.result}: ${r.error}` : r.result;
}
