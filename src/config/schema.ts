// The one source of truth for meshlet's config file. The TypeScript types
// (`RawConfig`) and the JSON Schema in config/meshlet.schema.json are both
// derived from this zod schema, so they cannot drift apart.
import { z } from 'zod';
import { isError, parseCidrField, parseListen, parseLoopback, parseRemote, type Parsed } from './addresses.js';
import { parseDnsAddress, parseRouteName, parseUpstream } from './dns-fields.js';

export const CONTRAST_CERT_DIR = '/contrast/tls-config';

const port = z.int().min(1, 'must be in 1-65535').max(65535, 'must be in 1-65535');
const name = z
  .string()
  .regex(/^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/, 'must be 1-63 letters, digits, "-", "_" or "." and start and end with a letter or digit');
const sanList = z.array(z.string().min(1)).describe('Subject Alternative Names (DNS or URI) the peer certificate must carry; any one matches');

export const policySchema = z.enum(['mtls', 'tls', 'plaintext']);

/** A string field whose rule is one of the parsers in addresses.ts. */
function parsed(parse: (v: string) => Parsed<unknown>) {
  return z.string().check((ctx) => {
    const r = parse(ctx.value);
    if (isError(r)) ctx.issues.push({ code: 'custom', message: r.error, input: ctx.value });
  });
}

const ingressPort = z.strictObject({
  name: name.describe('Informational name, used in Envoy resource names and errors'),
  port: port.describe('The application port inside the pod'),
  policy: policySchema.optional().describe('mtls: client certificate signed by the mesh CA required; tls: TLS without client certificate; plaintext: not redirected. Defaults to ingress.default'),
  mappedPort: port.optional().describe('mapped mode only: the port Envoy listens on and forwards to `port`'),
  allowedSans: sanList.optional().describe('mtls only: restrict accepted clients to these SANs'),
});

const egressRoute = z.strictObject({
  name: name,
  listen: parsed(parseListen).describe('Where the app dials: "127.x.y.z:port", or "127.x.y.z" for every port (kept as dialled)'),
  remote: parsed(parseRemote).describe('Where Envoy dials over mTLS: "host:port", or "host" to keep the dialled port'),
  sni: z.string().min(1).optional().describe('SNI to send to the remote'),
  expectedSans: sanList.optional().describe('Pin the remote certificate to these SANs'),
  names: z
    .array(parsed(parseRouteName))
    .optional()
    .describe("DNS names meshlet's DNS server answers with this route's listen address (needs dns.enabled); a short name and its search-domain forms all match. See docs/dns.md"),
});

export const configSchema = z
  .strictObject({
    version: z
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER)
      .optional()
      .describe('The config\'s version. Required when MESHLET_CONFIG_PUBKEY is set: a signed update is applied only with a higher version than the one in use (docs/threat-model.md)'),
    certs: z
      .strictObject({
        ca: z.string().min(1).default(`${CONTRAST_CERT_DIR}/mesh-ca.pem`),
        certChain: z.string().min(1).default(`${CONTRAST_CERT_DIR}/certChain.pem`),
        key: z.string().min(1).default(`${CONTRAST_CERT_DIR}/key.pem`),
        expectedSans: sanList.optional().describe('SANs the workload certificate must carry (checked at start and on rotation)'),
      })
      .prefault({}),
    ingress: z
      .strictObject({
        mode: z.enum(['tproxy', 'mapped', 'disabled']).default('tproxy'),
        default: policySchema.default('mtls').describe('Policy for ports that are not listed (tproxy mode)'),
        ports: z.array(ingressPort).default([]),
      })
      .prefault({}),
    egress: z
      .strictObject({
        routes: z.array(egressRoute).default([]),
        capture: z.boolean().default(false).describe('RFC step 3: send all outbound TCP through Envoy wrapped in mTLS'),
        exclude: z
          .strictObject({
            ports: z.array(port).default([]).describe('Destination ports that bypass capture'),
            cidrs: z.array(parsed(parseCidrField)).default([]).describe('Destination CIDRs that bypass capture'),
          })
          .prefault({}),
      })
      .prefault({}),
    dns: z
      .strictObject({
        enabled: z.boolean().default(false).describe("Redirect the pod's DNS (UDP and TCP port 53) to meshlet, which answers egress route names and forwards everything else"),
        address: parsed(parseDnsAddress).default('127.0.0.1:15053').describe('Where the DNS server listens, IPv4 loopback only; IPv6 queries go to [::1] on the same port'),
        ttl: z.int().min(0, 'must be in 0-3600').max(3600, 'must be in 0-3600').default(5).describe('TTL in seconds of the answers for route names'),
        upstreams: z.array(parsed(parseUpstream)).default([]).describe('Resolvers for every other query ("ip" or "ip:port"); empty: the nameservers of resolvConf'),
        resolvConf: z.string().min(1).default('/etc/resolv.conf').describe('Read once at start: nameservers (unless upstreams is set), search domains and ndots'),
        meshletUid: z
          .int()
          .min(0)
          .max(2147483647)
          .optional()
          .describe('uid `meshlet run` runs as; its DNS (the forwarded queries) is never redirected. Default: proxy.uid, as in the image where meshlet and Envoy both run as 1337. Set 0 when meshlet run runs as root. meshlet refuses to serve DNS from any other uid'),
      })
      .prefault({}),
    proxy: z
      .strictObject({
        uid: z.int().min(1).max(2147483647).default(1337).describe('uid Envoy runs as; its traffic is never captured'),
        gid: z.int().min(1).max(2147483647).default(1337),
        adminAddress: parsed(parseLoopback).default('127.0.0.1:15000').describe('Envoy admin, loopback only; meshlet reads readiness from it'),
        inboundPort: port.default(15006),
        outboundPort: port.default(15001),
        portlessEgressPort: port.default(15002).describe('Where portless egress routes are redirected to'),
        xdsSocket: z.string().min(1).default('/var/run/meshlet/xds.sock'),
        bootstrapPath: z.string().min(1).default('/var/run/meshlet/envoy.json'),
      })
      .prefault({}),
    debug: z
      .strictObject({
        address: parsed(parseLoopback).default('127.0.0.1:15020').describe('meshlet debug/ready endpoint, loopback only'),
      })
      .prefault({}),
  })
  .describe('meshlet sidecar configuration');

export type RawConfig = z.output<typeof configSchema>;
export type RawConfigInput = z.input<typeof configSchema>;
export type Policy = z.output<typeof policySchema>;

export function jsonSchema(): object {
  return z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12' });
}
