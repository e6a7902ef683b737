// The meshes the rows run. Remotes are IP literals from 198.18.0.0/15, so no
// cluster waits on DNS and no row depends on a resolver.
import type { RawConfigInput } from '../../src/config/schema.js';
import { freePort } from './http.js';
import { baseConfig, type BenchPod, type Ports } from './pod.js';

export async function freshPorts(): Promise<Ports> {
  return { debug: await freePort(), inbound: await freePort(), outbound: await freePort(), portless: await freePort() };
}

/** A 127/8 block nobody else in this run uses, so route listeners never collide across rows. */
let nextOctet = 150 + (process.pid % 40);
export function loopbackBlock(): number {
  nextOctet = nextOctet >= 250 ? 150 : nextOctet + 1;
  return nextOctet;
}

/**
 * Every feature at once, as a typical pod would use it: tproxy ingress with
 * per-port policies and a SAN allow-list, egress routes with and without a
 * port, capture with exclusions.
 */
export function featureConfig(
  pod: BenchPod,
  ports: Ports,
  block: number,
  routePort: number,
  webPolicy: 'tls' | 'mtls' = 'tls',
  extraRoute = false,
): RawConfigInput {
  const routes = [
    { name: 'emoji', listen: `127.${block}.0.1:${routePort}`, remote: '198.18.0.20:8080' },
    { name: 'voting', listen: `127.${block}.0.2:${routePort}`, remote: '198.18.0.21:8080', sni: 'voting-svc', expectedSans: ['voting-svc'] },
    { name: 'db', listen: `127.${block}.0.3`, remote: '198.18.0.22' },
  ];
  if (extraRoute) routes.push({ name: 'extra', listen: `127.${block}.0.4:${routePort}`, remote: '198.18.0.23:8080' });
  return {
    ...baseConfig(pod, ports),
    ingress: {
      mode: 'tproxy',
      default: 'mtls',
      ports: [
        { name: 'web', port: 8080, policy: webPolicy },
        { name: 'metrics', port: 7890, policy: 'plaintext' },
        { name: 'admin-api', port: 8443, policy: 'mtls', allowedSans: ['ops'] },
      ],
    },
    egress: { routes, capture: true, exclude: { ports: [443], cidrs: ['198.19.0.0/16', '2001:db8:ff::/48'] } },
  };
}

/** Mapped ingress only: Envoy on `mappedPort` forwards to the app on loopback `appPort`. */
export function mappedConfig(pod: BenchPod, ports: Ports, appPort: number, mappedPort: number, policy: 'tls' | 'mtls'): RawConfigInput {
  return { ...baseConfig(pod, ports), ingress: { mode: 'mapped', ports: [{ name: 'app', port: appPort, mappedPort, policy }] } };
}

/** `ports` ingress ports as tproxy filter chains plus `routes` egress routes, each its own 127/8 listener. */
export function scaleConfig(pod: BenchPod, ports: Ports, block: number, routePort: number, nPorts: number, nRoutes: number, flip = false): RawConfigInput {
  const ingress = Array.from({ length: nPorts }, (_, i) => ({
    name: `p${i}`,
    port: 20_001 + i,
    policy: (i % 2 === 0) !== (flip && i === 0) ? ('mtls' as const) : ('tls' as const),
  }));
  const routes = Array.from({ length: nRoutes }, (_, i) => ({
    name: `r${i}`,
    listen: `127.${block}.${1 + Math.floor(i / 250)}.${1 + (i % 250)}:${routePort}`,
    remote: `198.18.${Math.floor(i / 250)}.${1 + (i % 250)}:8443`,
  }));
  return { ...baseConfig(pod, ports), ingress: { mode: 'tproxy', default: 'mtls', ports: ingress }, egress: { routes } };
}
