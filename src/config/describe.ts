// A human summary of what a validated config will configure.
import type { MeshConfig } from './model.js';

const POLICY_TEXT = {
  mtls: 'mTLS (client certificate from the mesh CA required)',
  tls: 'TLS (no client certificate)',
  plaintext: 'plaintext (not redirected, reaches the app directly)',
} as const;

export function describeConfig(c: MeshConfig): string[] {
  const lines: string[] = [];
  const m = c.ingress.mode;
  if (m === 'disabled') lines.push('ingress: disabled (no inbound redirection)');
  else if (m === 'tproxy') {
    lines.push(`ingress: tproxy, every inbound TCP port via Envoy :${c.proxy.inboundPort}`);
    for (const p of c.ingress.ports) lines.push(`  port ${p.port} (${p.name}): ${POLICY_TEXT[p.policy]}${sans(p.allowedSans)}`);
    lines.push(`  any other port: ${POLICY_TEXT[c.ingress.default]}`);
  } else {
    lines.push('ingress: mapped (direct connections to app ports are dropped)');
    for (const p of c.ingress.ports) {
      lines.push(p.mappedPort === undefined ? `  port ${p.port} (${p.name}): ${POLICY_TEXT[p.policy]}` : `  port ${p.mappedPort} -> app port ${p.port} (${p.name}): ${POLICY_TEXT[p.policy]}${sans(p.allowedSans)}`);
    }
  }
  if (c.egress.routes.length === 0) lines.push('egress routes: none');
  else lines.push('egress routes (mTLS to the remote):');
  for (const r of c.egress.routes) {
    const listen = `${r.listenIp}:${r.listenPort ?? '*'}`;
    const remote = `${r.remoteHost}:${r.remotePort ?? r.listenPort ?? '<dialled port>'}`;
    const extra = [r.sni ? `sni ${r.sni}` : '', r.expectedSans.length ? `expects SAN ${r.expectedSans.join('|')}` : ''].filter(Boolean).join(', ');
    const names = r.names?.length ? `; DNS names ${r.names.join(', ')}` : '';
    lines.push(`  ${r.name}: ${listen} -> ${remote}${extra ? ` (${extra})` : ''}${names}`);
  }
  if (c.egress.capture) {
    const ex = [...c.egress.exclude.ports.map((p) => `port ${p}`), ...c.egress.exclude.cidrs.map((x) => x.text)];
    lines.push(`egress capture: on, all outbound TCP via Envoy :${c.proxy.outboundPort} wrapped in mTLS (except DNS, uid ${c.proxy.uid}${ex.length ? `, ${ex.join(', ')}` : ''})`);
  } else lines.push('egress capture: off (only the routes above are meshed)');
  if (c.dns) {
    const d = c.dns;
    const upstream = d.upstreams.length ? d.upstreams.map(addr).join(', ') : `the nameservers in ${d.resolvConf}`;
    lines.push(`dns: on, the pod's DNS (UDP and TCP port 53) redirected to meshlet at ${addr(d.address)} and [::1]:${d.address.port}; route names answered with their listen address (ttl ${d.ttl}s), everything else forwarded to ${upstream}; meshlet's own lookups (uid ${d.meshletUid}) not redirected`);
  } else lines.push('dns: off (the pod resolves names as usual)');
  const p = c.proxy;
  lines.push(`proxy: uid ${p.uid} gid ${p.gid}, admin ${addr(p.admin)}, ports ${p.inboundPort} inbound / ${p.outboundPort} outbound / ${p.portlessEgressPort} portless egress, xDS socket ${p.xdsSocket}, bootstrap ${p.bootstrapPath}`);
  lines.push(`debug: ${addr(c.debug)} (/healthz, /ready, /xds, /metrics)`);
  return lines;
}

function addr(a: { ip: string; port: number }): string {
  return `${a.ip.includes(':') ? `[${a.ip}]` : a.ip}:${a.port}`;
}

function sans(list: string[]): string {
  return list.length ? `, only SAN ${list.join('|')}` : '';
}
