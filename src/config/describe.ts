// A human summary of what a validated config will configure.
import { describeExemptions, meshletListener } from './exemptions.js';
import { keyExchangeOf, type IngressPort, type KeyExchange, type MeshConfig } from './model.js';
import { adminSocketPath } from './constants.js';

const POLICY_TEXT = {
  mtls: 'mTLS (client certificate from the mesh CA required)',
  tls: 'TLS (no client certificate)',
  plaintext: 'plaintext (not redirected, reaches the app directly)',
} as const;

const KEY_EXCHANGE_MEANS: Record<KeyExchange, string> = {
  'pq-preferred': 'X25519MLKEM768 (hybrid post-quantum), else classic X25519 or P-256',
  'pq-required': 'X25519MLKEM768 (hybrid post-quantum) only, classic refused',
};
/** Per port and route the name only; the first line of the summary says what it means. */
const KEY_EXCHANGE_TEXT: Record<KeyExchange, string> = { 'pq-preferred': 'key exchange pq-preferred', 'pq-required': 'key exchange pq-required' };

export function describeConfig(c: MeshConfig): string[] {
  const lines: string[] = [];
  const m = c.ingress.mode;
  lines.push(`tls: key exchange ${c.tls.keyExchange} = ${KEY_EXCHANGE_MEANS[c.tls.keyExchange]} (tls.keyExchange; a port or route may set its own)`);
  if (m === 'disabled') lines.push('ingress: disabled (no inbound redirection)');
  else if (m === 'tproxy') {
    lines.push(`ingress: tproxy, every inbound TCP port via Envoy :${c.proxy.inboundPort}`);
    for (const p of c.ingress.ports) lines.push(`  port ${p.port} (${p.name}): ${policyText(c, p)}${sans(p.allowedSans)}${tls12(p)}${kx(c, p)}`);
    lines.push(`  any other port: ${POLICY_TEXT[c.ingress.default]}${c.ingress.default === 'plaintext' ? '' : `, ${KEY_EXCHANGE_TEXT[c.tls.keyExchange]}`}`);
  } else {
    lines.push('ingress: mapped (direct connections to app ports are dropped)');
    for (const p of c.ingress.ports) {
      lines.push(
        p.mappedPort === undefined
          ? `  port ${p.port} (${p.name}): ${policyText(c, p)}`
          : `  port ${p.mappedPort} -> app port ${p.port} (${p.name}): ${POLICY_TEXT[p.policy]}${sans(p.allowedSans)}${tls12(p)}${kx(c, p)}`,
      );
    }
    lines.push(
      c.ingress.default === 'plaintext'
        ? `  any other port: ${POLICY_TEXT.plaintext}`
        : `  any other port: dropped (ingress.default ${c.ingress.default}: mapped mode has no Envoy listener for it; list it with a mappedPort to serve it)`,
    );
  }
  if (c.egress.routes.length === 0) lines.push('egress routes: none');
  else lines.push('egress routes (mTLS to the remote):');
  for (const r of c.egress.routes) {
    const listen = `${r.listenIp}:${r.listenPort ?? '*'}`;
    const remote = `${r.remoteHost}:${r.remotePort ?? r.listenPort ?? '<dialled port>'}`;
    const extra = [r.sni ? `sni ${r.sni}` : '', r.expectedSans.length ? `expects SAN ${r.expectedSans.join('|')}` : '', KEY_EXCHANGE_TEXT[keyExchangeOf(c, r)]]
      .filter(Boolean)
      .join(', ');
    const names = r.names?.length ? `; DNS names ${r.names.join(', ')}` : '';
    lines.push(`  ${r.name}: ${listen} -> ${remote}${extra ? ` (${extra})` : ''}${names}`);
  }
  if (c.egress.capture) {
    lines.push(
      `egress capture: on, all outbound TCP via Envoy :${c.proxy.outboundPort} wrapped in mTLS (except the exemptions below), ` +
        `${KEY_EXCHANGE_TEXT[c.tls.keyExchange]}`,
    );
  } else lines.push('egress capture: off (only the routes above are meshed)');
  if (c.metrics) lines.push(`metrics: read-only scrape on :${c.metrics.port} (pod addresses, plaintext): GET /stats/prometheus, /ready`);
  if (c.probes) {
    const checks = c.probes.checks.map((p) => `${p.name} (${p.kind} :${p.port}${p.path ?? ''})`).join(', ');
    lines.push(`probes: GET /app-health/<name> on :${c.probes.port} (pod addresses, plaintext): ${checks || 'none'}`);
  }
  lines.push(`access log: ${c.accessLog ? 'on, one JSON line per connection on stdout' : 'off'}`);
  if (c.dns) {
    const d = c.dns;
    const upstream = d.upstreams.length ? d.upstreams.map(addr).join(', ') : `the nameservers in ${d.resolvConf}`;
    lines.push(
      `dns: on, the pod's DNS (UDP and TCP port 53) redirected to meshlet at ${addr(d.address)} and [::1]:${d.address.port}; route names answered with ` +
        `their listen address (ttl ${d.ttl}s), everything else forwarded to ${upstream}; meshlet's own lookups (uid ${d.meshletUid}) not redirected`,
    );
  } else lines.push('dns: off (the pod resolves names as usual)');
  lines.push(`egress non-TCP (UDP, ICMP, ...): ${c.egress.nonTcp === 'drop' ? 'dropped' : 'allowed in clear'} (egress.nonTcp)`);
  lines.push('plaintext paths (every exemption from TLS, and the field that names it):', ...describeExemptions(c));
  const p = c.proxy;
  lines.push(
    `proxy: uid ${p.uid} gid ${p.gid}, admin socket ${adminSocketPath(p.xdsSocket)}, ports ${p.inboundPort} inbound / ${p.outboundPort} outbound / ` +
      `${p.portlessEgressPort} portless egress, xDS socket ${p.xdsSocket}, bootstrap ${p.bootstrapPath}`,
  );
  lines.push(`debug: ${addr(c.debug)} (/healthz, /ready, /xds, /metrics)`);
  return lines;
}

function addr(a: { ip: string; port: number }): string {
  return `${a.ip.includes(':') ? `[${a.ip}]` : a.ip}:${a.port}`;
}

function policyText(c: MeshConfig, p: IngressPort): string {
  const own = p.policy === 'plaintext' ? meshletListener(c, p.port) : undefined;
  return own ? `plaintext (not redirected): ${own.what}` : POLICY_TEXT[p.policy];
}

function tls12(p: IngressPort): string {
  return p.allowTls12 ? ', TLS 1.2 allowed (allowTls12: the server certificate crosses in clear under 1.2)' : '';
}

function kx(c: MeshConfig, p: IngressPort): string {
  return p.policy === 'plaintext' ? '' : `, ${KEY_EXCHANGE_TEXT[keyExchangeOf(c, p)]}`;
}

function sans(list: string[]): string {
  return list.length ? `, only SAN ${list.join('|')}` : '';
}
