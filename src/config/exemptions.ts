// Every path by which traffic enters or leaves the pod without Envoy's TLS,
// computed from the config alone. `meshlet check`, the debug `/xds` view and
// the README's list all come from here, so what the operator reads is what
// the rules install. (The rule generator does not call this: it is tested
// against it instead, one namespace test per kind of exemption.)
import type { MeshConfig, SocketAddress } from './model.js';

export interface Exemption {
  direction: 'inbound' | 'outbound';
  /** What passes in clear, e.g. "TCP port 7890" or "uid 1337, every protocol". */
  traffic: string;
  /** The config field (or "built in") that names it. */
  field: string;
  why: string;
}

function hostPort(a: SocketAddress): string {
  return a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}

export function exemptions(c: MeshConfig): Exemption[] {
  const out: Exemption[] = [];
  out.push({
    direction: 'outbound',
    traffic: `uid ${c.proxy.uid}, every protocol and destination`,
    field: 'proxy.uid',
    why: "Envoy's own connections (the mTLS it originates, its DNS); any process with this uid is trusted like Envoy: the one trust boundary besides root",
  });
  out.push({
    direction: 'inbound',
    traffic: 'loopback (lo), including the hop from Envoy to the app (from 127.0.0.6 / ::6)',
    field: 'built in',
    why: 'never leaves the pod',
  });

  const plaintext = c.ingress.ports.filter((p) => p.policy === 'plaintext');
  if (c.ingress.mode === 'disabled') {
    out.push({ direction: 'inbound', traffic: 'every TCP port', field: 'ingress.mode', why: 'ingress is disabled: nothing inbound is intercepted' });
  } else {
    for (const p of plaintext) {
      const own = meshletListener(c, p.port);
      out.push(
        own
          ? { direction: 'inbound', traffic: `TCP port ${p.port} (${p.name})`, field: own.field, why: `not redirected: ${own.what}` }
          : {
              direction: 'inbound',
              traffic: `TCP port ${p.port} (${p.name})`,
              field: `ingress.ports (${p.name}: policy plaintext)`,
              why: 'not redirected, reaches the app directly',
            },
      );
    }
    if (c.ingress.default === 'plaintext') {
      const closed = c.ingress.ports.filter((p) => p.policy !== 'plaintext').map((p) => p.port);
      out.push({
        direction: 'inbound',
        traffic: `every TCP port not listed${closed.length ? ` (all but ${closed.join(', ')})` : ''}`,
        field: 'ingress.default: plaintext',
        why: 'unlisted ports are not redirected',
      });
    }
  }

  if (!c.egress.capture) {
    const routes = c.egress.routes.map((r) => `${r.listenIp}${r.listenPort === undefined ? '' : `:${r.listenPort}`}`);
    out.push({
      direction: 'outbound',
      traffic: `every TCP connection${routes.length ? ` except to the egress routes (${routes.join(', ')})` : ''}`,
      field: 'egress.capture: false',
      why: 'only the routes are meshed',
    });
  } else {
    for (const port of c.egress.exclude.ports)
      out.push({ direction: 'outbound', traffic: `TCP to port ${port}, any host`, field: 'egress.exclude.ports', why: 'excluded from capture' });
    for (const cidr of c.egress.exclude.cidrs)
      out.push({ direction: 'outbound', traffic: `TCP to ${cidr.text}`, field: 'egress.exclude.cidrs', why: 'excluded from capture' });
  }

  const resolvers = c.resolvers ?? [];
  const dnsTo = resolvers.length ? resolvers.map(hostPort).join(', ') : 'no resolver (none known)';
  if (c.dns) {
    out.push({
      direction: 'outbound',
      traffic: `DNS (UDP and TCP port 53) from the app: redirected to meshlet's DNS server ${hostPort(c.dns.address)}, which forwards in clear to ${dnsTo}`,
      field: 'dns.enabled',
      why: 'DNS has no TLS; meshlet answers the route names itself',
    });
  } else {
    out.push({
      direction: 'outbound',
      traffic: `DNS to the resolvers ${dnsTo} (TCP${c.egress.nonTcp === 'drop' ? ' and UDP' : ''} to their port)`,
      field: `dns.resolvConf (${c.resolvConf})`,
      why: 'DNS must keep working; port 53 to any other host is captured like any port',
    });
  }

  if (c.egress.nonTcp === 'allow') {
    out.push({
      direction: 'outbound',
      traffic: 'UDP, ICMP and every other non-TCP protocol, any host',
      field: `egress.nonTcp: allow${c.egress.capture ? '' : ' (the default without capture)'}`,
      why: 'the mesh carries TCP only',
    });
  } else {
    out.push({
      direction: 'outbound',
      traffic: 'ICMP errors about existing connections (path MTU discovery); IPv6 neighbour discovery and MLD reports',
      field: 'egress.nonTcp: drop',
      why: 'the network stops working without them; every other non-TCP packet is dropped',
    });
  }
  return out;
}

/** One line per exemption, for `meshlet check` and the README. */
export function describeExemptions(c: MeshConfig): string[] {
  return exemptions(c).map((e) => `  ${e.direction.padEnd(8)} ${e.traffic} [${e.field}]: ${e.why}`);
}

/**
 * meshlet's own plaintext listeners on the pod's addresses (the metrics and
 * probe ports), which the config makes plaintext ports so the rules let the
 * scraper and the kubelet through: they answer a few read-only GETs, not the app.
 */
export function meshletListener(c: MeshConfig, port: number): { field: string; what: string } | undefined {
  if (c.metrics?.port === port) return { field: 'metrics.port', what: "meshlet's read-only metrics listener (GET /stats/prometheus, /ready)" };
  if (c.probes?.port === port) return { field: 'probes.port', what: "meshlet's probe listener (GET /app-health/<name>)" };
  return undefined;
}
