// The one source of truth for meshlet's config file. The TypeScript types
// (`RawConfig`), the JSON Schema in config/meshlet.schema.json and the
// generated validator that checks valid configs without zod
// (validate-spec.ts, from validate-gen.ts) are all derived from this zod
// schema, so they cannot drift apart. zod itself is loaded only when the
// schema is first asked for (`schemas()`), which a valid config at run time
// never does.
import type { z } from 'zod';
import { isError } from './addresses.js';
import { FIELD_PARSERS, type FieldParserName } from './field-parsers.js';
import { DEFAULTS } from './constants.js';
import { zodLibrary } from './zod-lib.js';

export const CONTRAST_CERT_DIR = '/contrast/tls-config';

/** The custom check of each `parsed(...)` field, with the name of its parser, for the generator. */
const parserOfCheck = new WeakMap<object, FieldParserName>();

/** The name of the field parser behind a custom check made by `parsed`, or undefined for any other check. */
export function fieldParserOf(check: object): FieldParserName | undefined {
  return parserOfCheck.get(check);
}

function build(z: typeof import('zod').z) {
  const port = z.int().min(1, 'must be in 1-65535').max(65535, 'must be in 1-65535');
  const name = z
    .string()
    .regex(/^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/, 'must be 1-63 letters, digits, "-", "_" or "." and start and end with a letter or digit');
  const sanList = z.array(z.string().min(1)).describe('Subject Alternative Names (DNS or URI) the peer certificate must carry; any one matches');

  const policySchema = z.enum(['mtls', 'tls', 'plaintext']);

  /**
   * Key exchange of a TLS hop. pq-preferred: the hybrid post-quantum group
   * X25519MLKEM768 first, classic X25519 and P-256 for peers without it.
   * pq-required: X25519MLKEM768 only; a peer without it is refused.
   */
  const keyExchangeSchema = z.enum(['pq-preferred', 'pq-required']);
  const keyExchangeText =
    'pq-preferred: the hybrid post-quantum group X25519MLKEM768 first, classic X25519 and P-256 for peers without it; pq-required: X25519MLKEM768 only, any ' +
    'other key exchange is refused (every meshlet sidecar offers it; TLS 1.2 cannot carry it)';

  /** A string field whose rule is one of the parsers in addresses.ts or dns-fields.ts, registered by name in field-parsers.ts. */
  function parsed(name: FieldParserName) {
    const parse = FIELD_PARSERS[name];
    const field = z.string().check((ctx) => {
      const r = parse(ctx.value);
      if (isError(r)) ctx.issues.push({ code: 'custom', message: r.error, input: ctx.value });
    });
    const check = field._zod.def.checks?.at(-1);
    if (!check) throw new Error('internal: zod kept no check for a parsed field');
    parserOfCheck.set(check, name);
    return field;
  }

  const ingressPort = z.strictObject({
    name: name.describe('Informational name, used in Envoy resource names and errors'),
    port: port.describe('The application port inside the pod'),
    policy: policySchema
      .optional()
      .describe(
        'mtls: client certificate signed by the mesh CA required; tls: TLS without client certificate; plaintext: not redirected. Defaults to ingress.default',
      ),
    mappedPort: port.optional().describe('mapped mode only: the port Envoy listens on and forwards to `port`'),
    allowedSans: sanList.optional().describe('mtls only: restrict accepted clients to these SANs'),
    allowTls12: z
      .boolean()
      .optional()
      .describe(
        'tls only: also accept TLS 1.2, for outside clients that cannot do 1.3 (the server certificate then crosses in clear). Default false: TLS 1.3 only. ' +
          'mtls ports are always 1.3 only',
      ),
    keyExchange: keyExchangeSchema.optional().describe(`mtls and tls only: this port's key exchange. ${keyExchangeText}. Defaults to tls.keyExchange`),
  });

  const egressRoute = z.strictObject({
    name: name,
    listen: parsed('parseListen').describe('Where the app dials: "127.x.y.z:port", or "127.x.y.z" for every port (kept as dialled)'),
    remote: parsed('parseRemote').describe('Where Envoy dials over mTLS: "host:port", or "host" to keep the dialled port'),
    sni: z.string().min(1).optional().describe('SNI to send to the remote'),
    expectedSans: sanList.optional().describe('Pin the remote certificate to these SANs'),
    names: z
      .array(parsed('parseRouteName'))
      .optional()
      .describe(
        "DNS names meshlet's DNS server answers with this route's listen address (needs dns.enabled); a short name and its search-domain forms all " +
          'match. See docs/dns.md',
      ),
    keyExchange: keyExchangeSchema.optional().describe(`This route's key exchange to the remote. ${keyExchangeText}. Defaults to tls.keyExchange`),
  });

  const probeKindSchema = z.enum(['http', 'tcp', 'grpc']);

  const appProbe = z.strictObject({
    name: name.describe("The probe's name: meshlet answers GET /app-health/<name> on probes.port"),
    kind: probeKindSchema.describe('http: GET `path`, 200-399 passes; tcp: the port accepts a connection; grpc: grpc.health.v1.Health/Check answers SERVING'),
    port: port.describe("The app's port inside the pod, dialled directly (never through Envoy)"),
    path: z
      .string()
      .max(1024, 'must be at most 1024 characters')
      .regex(/^\/[\x21-\x7e]*$/, 'must start with "/" and hold only printable ASCII without spaces')
      .optional()
      .describe('http only (required there): the request path, query included'),
    service: z
      .string()
      .max(256, 'must be at most 256 characters')
      .optional()
      .describe('grpc only: the service name sent in the health check; default "" (the whole server)'),
    timeoutSeconds: z
      .int()
      .min(1, 'must be in 1-60')
      .max(60, 'must be in 1-60')
      .default(1)
      .describe("How long the check may take; keep it below the kubelet probe's timeoutSeconds"),
  });

  const configSchema = z
    .strictObject({
      version: z
        .int()
        .min(0)
        .max(Number.MAX_SAFE_INTEGER)
        .optional()
        .describe(
          "The config's version. Required when MESHLET_CONFIG_PUBKEY is set: a signed update is applied only with a higher version than the one in use " +
            '(docs/threat-model.md)',
        ),
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
          nonTcp: z
            .enum(['drop', 'allow'])
            .optional()
            .describe(
              'UDP, ICMP and every other non-TCP protocol leaving the pod (the mesh carries TCP only): drop, or allow in clear. DNS to the resolvers, ' +
                'loopback, ICMP errors of existing flows, IPv6 neighbour discovery and the proxy uid always pass. Default: drop with capture on, allow with ' +
                'capture off (outbound TCP leaves in clear then too)',
            ),
          exclude: z
            .strictObject({
              ports: z.array(port).default([]).describe('Destination ports that bypass capture'),
              cidrs: z.array(parsed('parseCidrField')).default([]).describe('Destination CIDRs that bypass capture'),
            })
            .prefault({}),
        })
        .prefault({}),
      dns: z
        .strictObject({
          enabled: z
            .boolean()
            .default(false)
            .describe("Redirect the pod's DNS (UDP and TCP port 53) to meshlet, which answers egress route names and forwards everything else"),
          address: parsed('parseDnsAddress')
            .default(DEFAULTS.dnsAddress)
            .describe('Where the DNS server listens, IPv4 loopback only; IPv6 queries go to [::1] on the same port'),
          ttl: z.int().min(0, 'must be in 0-3600').max(3600, 'must be in 0-3600').default(5).describe('TTL in seconds of the answers for route names'),
          upstreams: z
            .array(parsed('parseUpstream'))
            .default([])
            .describe('Resolvers for every other query ("ip" or "ip:port"); empty: the nameservers of resolvConf'),
          resolvConf: z
            .string()
            .min(1)
            .default('/etc/resolv.conf')
            .describe('Read once at start: nameservers (unless upstreams is set), search domains and ndots'),
          meshletUid: z
            .int()
            .min(0)
            .max(2147483647)
            .optional()
            .describe(
              'uid `meshlet run` runs as; its DNS (the forwarded queries) is never redirected. Default: proxy.uid, as in the image where meshlet and Envoy ' +
                'both run as 1337. Set 0 when meshlet run runs as root. meshlet refuses to serve DNS from any other uid',
            ),
        })
        .prefault({}),
      proxy: z
        .strictObject({
          uid: z.int().min(1).max(2147483647).default(DEFAULTS.proxy.uid).describe('uid Envoy runs as; its traffic is never captured'),
          gid: z.int().min(1).max(2147483647).default(DEFAULTS.proxy.gid),
          adminAddress: parsed('parseLoopback')
            .optional()
            .describe('Deprecated and ignored: Envoy admin listens only on the Unix socket envoy/admin.sock next to xdsSocket, never on TCP'),
          inboundPort: port.default(DEFAULTS.proxy.inboundPort),
          outboundPort: port.default(DEFAULTS.proxy.outboundPort),
          portlessEgressPort: port.default(DEFAULTS.proxy.portlessEgressPort).describe('Where portless egress routes are redirected to'),
          xdsSocket: z.string().min(1).default(DEFAULTS.proxy.xdsSocket),
          bootstrapPath: z.string().min(1).default(DEFAULTS.proxy.bootstrapPath),
        })
        .prefault({}),
      metrics: z
        .strictObject({
          port: port.describe(
            "Opt-in read-only listener on the pod's addresses (IPv4 and IPv6): GET /stats/prometheus (Envoy's stats and meshlet's) and GET /ready, nothing " +
              'else. The port is exempt from interception (plaintext) unless ingress.ports lists it with another policy',
          ),
        })
        .optional()
        .describe('Metrics scrape port reachable from outside the pod; Envoy admin itself is never exposed'),
      probes: z
        .strictObject({
          port: port
            .default(DEFAULTS.probesPort)
            .describe(
              "Where meshlet answers GET /app-health/<name> on the pod's addresses (IPv4 and IPv6), in plaintext: exempt from interception like " +
                'metrics.port. Nothing else is served there',
            ),
          checks: z
            .array(appProbe)
            .max(32, 'must list at most 32 probes')
            .default([])
            .describe('The probes the kubelet is pointed at, each run against the app from inside the pod'),
        })
        .optional()
        .describe(
          'App health for the kubelet: its httpGet probes go to meshlet, which runs the original probe locally, so an app port can demand mTLS and a TCP ' +
            'probe fails when the app is down',
        ),
      accessLog: z
        .boolean()
        .default(false)
        .describe(
          "One JSON line on stdout per inbound and outbound connection (Envoy's stdout access logger): times, bytes, addresses, port or route, the peer " +
            "certificate's SANs and TLS version, Envoy's response flags. Never payload or key material. Reloadable",
        ),
      debug: z
        .strictObject({
          address: parsed('parseLoopback').default(DEFAULTS.debugAddress).describe('meshlet debug/ready endpoint, loopback only'),
        })
        .prefault({}),
      tls: z
        .strictObject({
          keyExchange: keyExchangeSchema
            .default('pq-preferred')
            .describe(`Key exchange of every TLS hop (inbound ports, egress routes, capture) unless a port or route overrides it. ${keyExchangeText}`),
        })
        .prefault({}),
    })
    .describe('meshlet sidecar configuration');

  return { configSchema, policySchema, keyExchangeSchema, probeKindSchema };
}

export type Schemas = ReturnType<typeof build>;
let built: Schemas | undefined;

/** The zod schemas, built (and zod loaded) on first use. */
export function schemas(): Schemas {
  return (built ??= build(zodLibrary().z));
}

export type RawConfig = z.output<Schemas['configSchema']>;
export type RawConfigInput = z.input<Schemas['configSchema']>;
export type Policy = z.output<Schemas['policySchema']>;
export type ProbeKind = z.output<Schemas['probeKindSchema']>;
export type KeyExchange = z.output<Schemas['keyExchangeSchema']>;

export function jsonSchema(): object {
  return zodLibrary().z.toJSONSchema(schemas().configSchema, { io: 'input', target: 'draft-2020-12' });
}
