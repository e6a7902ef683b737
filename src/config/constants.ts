// Facts that the iptables rules, Envoy's config and meshlet's config defaults
// must agree on, each written once. A mismatch here is not a cosmetic bug:
// if Envoy's hop to the app left from an address the rules do not let
// through, or a listener took a port the rules do not send traffic to,
// connections would loop through Envoy or pass it by.
// test/config/constants.test.ts checks both sides against these.
const path = process.getBuiltinModule('node:path');

/** Config defaults: the schema's `.default()`s and the cross-field checks read these. */
export const DEFAULTS = {
  proxy: {
    uid: 1337,
    gid: 1337,
    /** TPROXY target of inbound TCP; Envoy's transparent inbound listener. */
    inboundPort: 15006,
    /** REDIRECT target of captured outbound TCP. */
    outboundPort: 15001,
    /** REDIRECT target of portless egress routes. */
    portlessEgressPort: 15002,
    xdsSocket: '/var/run/meshlet/xds.sock',
    bootstrapPath: '/var/run/meshlet/envoy.json',
  },
  debugAddress: '127.0.0.1:15020',
  dnsAddress: '127.0.0.1:15053',
  probesPort: 15021,
} as const;

/**
 * Envoy's upstream to the app binds these sources, so the hop goes over lo,
 * which the rules never capture, and the app sees which peers are proxied.
 * 127.0.0.6 is local by virtue of 127/8; ::6 must be added to lo (the rules'
 * routing step does).
 */
export const UPSTREAM_SOURCE_V4 = '127.0.0.6';
export const UPSTREAM_SOURCE_V6 = '::6';

/** The DNS server's IPv6 address, and where the rules redirect the app's IPv6 DNS: dns.address's port on [::1]. */
export const DNS_V6_ADDRESS = '::1';

/** The proxy uid's own subdirectory of the runtime directory, where Envoy creates its admin socket. */
export const PROXY_SUBDIR = 'envoy';

/** Where Envoy creates its admin socket: the proxy uid's directory next to the xDS socket. */
export function adminDir(xdsSocket: string): string {
  return path.join(path.dirname(xdsSocket), PROXY_SUBDIR);
}

export function adminSocketPath(xdsSocket: string): string {
  return path.join(adminDir(xdsSocket), 'admin.sock');
}

/** sun_path holds 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH = 107;
