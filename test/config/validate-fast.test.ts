// The generated validator (validate-fast.ts against validate-spec.ts) stands
// in for zod on the run path, so it must never accept what zod refuses, and
// what it accepts must come out exactly as zod's output: defaults and
// prefaults filled in, keys in the same order. Checked on the committed spec
// (regenerated in memory), on thousands of generated configs, valid and
// slightly broken, with a fixed seed, and on every shipped and fixture config.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { schemas } from '../../src/config/schema.js';
import { validateFast } from '../../src/config/validate-fast.js';
import { generateValidateSpec, VALIDATE_SPEC_SOURCE } from '../../src/config/validate-gen.js';
import { validateConfig } from '../../src/config/validate.js';
import { zodLibrary } from '../../src/config/zod-lib.js';
import { FULL, MAPPED, DISABLED } from '../envoy/configs.js';
import { CASES } from '../iptables/fixtures.js';
import { prng } from '../helpers/prng.js';

const SEED = 0x5eed_0017;

/** Same value and the same key order at every level (toStrictEqual ignores order). */
function expectSame(fast: unknown, zod: unknown): void {
  expect(fast).toStrictEqual(zod);
  expect(JSON.stringify(fast)).toBe(JSON.stringify(zod));
}

/** The one-way rule on any input: fast accepts only what zod accepts, with zod's value. */
function agree(input: unknown): { fast: boolean; zod: boolean } {
  const zod = schemas().configSchema.safeParse(input);
  const fast = validateFast(input);
  if (fast !== undefined) {
    expect(zod.success, `fast accepted what zod refused: ${JSON.stringify(input)?.slice(0, 400)}`).toBe(true);
    expectSame(fast, zod.data);
  }
  return { fast: fast !== undefined, zod: zod.success };
}

describe('the generated spec', () => {
  it('is up to date with the zod schema', () => {
    expect(readFileSync(VALIDATE_SPEC_SOURCE, 'utf8')).toBe(generateValidateSpec());
  });

  it('refuses to generate for a schema rule it cannot check', () => {
    const { z } = zodLibrary();
    const cases: [string, unknown][] = [
      ['a loose object', z.object({ a: z.string() })],
      ['a string format', z.strictObject({ a: z.email() })],
      ['a refine', z.strictObject({ a: z.string().refine((s) => s !== 'x') })],
      ['a transform', z.strictObject({ a: z.string().transform((s) => s.length) })],
      ['a float', z.strictObject({ a: z.number() })],
      ['an exclusive bound', z.strictObject({ a: z.int().gt(3) })],
      ['a nullable', z.strictObject({ a: z.string().nullable() })],
      ['an optional default', z.strictObject({ a: z.string().default('x').optional() })],
      ['a union', z.strictObject({ a: z.union([z.string(), z.int()]) })],
    ];
    for (const [what, schema] of cases) expect(() => generateValidateSpec(schema), what).toThrow(/validate-gen: /);
  });
});

// ---- generated configs ----

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const chance = (r: Rand, p: number): boolean => r() < p;
const int = (r: Rand, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));

const NAMES = ['web', 'api', 'a', 'db-1', 'x.y_z', 'A9', 'grpc-health', '-bad', 'bad-', '', 'sp ace', 'ü', 'x'.repeat(63), 'x'.repeat(64)];
const PORTS = [1, 80, 8080, 15006, 65535, 0, 65536, -1, 1.5, Number.NaN, Infinity];
const LISTEN = ['127.0.0.1:8080', '127.10.0.1', '127.255.255.254:1', '10.0.0.1:80', '127.0.0.1:0', '[::1]:80', '127.0.0.1:', 'localhost:80', ''];
const REMOTE = ['db.example:5432', 'svc', '198.18.0.1', '[2001:db8::1]:443', 'bad host:1', 'x:99999', '', 'a..b:1'];
const SANS = ['spiffe://mesh/web', 'web', 'dns.example', ''];
const ROUTE_NAMES = ['db.example', 'DB.Example.', 'svc', '*.example', '198.18.0.1', 'a..b', '', 'x'.repeat(64)];
const CIDRS = ['198.18.0.0/15', '2001:db8::/32', '10.0.0.0/8', '198.18.0.0/33', 'nope', '198.18.0.1'];
const LOOPBACK = ['127.0.0.1:15020', '[::1]:9000', '127.1.2.3:1', '10.0.0.1:15020', '127.0.0.1', '::1:80'];
const DNS_ADDR = ['127.0.0.1:15053', '127.0.0.53:53', '[::1]:53', '127.0.0.1', '198.18.0.1:53'];
const UPSTREAMS = ['198.18.0.53', '198.18.0.53:5353', '[2001:db8::53]:53', '[2001:db8::53]', '2001:db8::53', 'resolver.example', '198.18.0.53:0'];
const PATHS = ['/', '/healthz?full=1', 'healthz', '/a b', `/${'p'.repeat(1030)}`];

function ingressPort(r: Rand): Record<string, unknown> {
  const p: Record<string, unknown> = { name: pick(r, NAMES.slice(0, 7)), port: int(r, 1, 65535) };
  if (chance(r, 0.5)) p['policy'] = pick(r, ['mtls', 'tls', 'plaintext']);
  if (chance(r, 0.2)) p['mappedPort'] = int(r, 1, 65535);
  if (chance(r, 0.2)) p['allowedSans'] = Array.from({ length: int(r, 0, 3) }, () => pick(r, SANS.slice(0, 3)));
  if (chance(r, 0.2)) p['allowTls12'] = chance(r, 0.5);
  if (chance(r, 0.2)) p['keyExchange'] = pick(r, ['pq-preferred', 'pq-required']);
  return p;
}

function route(r: Rand): Record<string, unknown> {
  const x: Record<string, unknown> = { name: pick(r, NAMES.slice(0, 7)), listen: pick(r, LISTEN.slice(0, 3)), remote: pick(r, REMOTE.slice(0, 4)) };
  if (chance(r, 0.3)) x['sni'] = pick(r, ['db.example', 'x']);
  if (chance(r, 0.2)) x['expectedSans'] = [pick(r, SANS.slice(0, 3))];
  if (chance(r, 0.3)) x['names'] = Array.from({ length: int(r, 0, 3) }, () => pick(r, ROUTE_NAMES.slice(0, 3)));
  if (chance(r, 0.2)) x['keyExchange'] = pick(r, ['pq-preferred', 'pq-required']);
  return x;
}

function probe(r: Rand): Record<string, unknown> {
  const kind = pick(r, ['http', 'tcp', 'grpc']);
  const p: Record<string, unknown> = { name: pick(r, NAMES.slice(0, 7)), kind, port: int(r, 1, 65535) };
  if (kind === 'http' || chance(r, 0.1)) p['path'] = pick(r, PATHS.slice(0, 2));
  if (kind === 'grpc' && chance(r, 0.5)) p['service'] = pick(r, ['', 'grpc.health.v1.Health']);
  if (chance(r, 0.4)) p['timeoutSeconds'] = int(r, 1, 60);
  return p;
}

/** A config that zod accepts (field rules only; the cross-field rules are not zod's). */
function validConfig(r: Rand): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  if (chance(r, 0.2)) c['version'] = int(r, 0, 1_000_000);
  if (chance(r, 0.4))
    c['certs'] = chance(r, 0.5) ? {} : { ca: '/c/ca.pem', certChain: '/c/chain.pem', key: '/c/key.pem', expectedSans: [pick(r, SANS.slice(0, 3))] };
  if (chance(r, 0.8)) {
    const ingress: Record<string, unknown> = {};
    if (chance(r, 0.6)) ingress['mode'] = pick(r, ['tproxy', 'mapped', 'disabled']);
    if (chance(r, 0.5)) ingress['default'] = pick(r, ['mtls', 'tls', 'plaintext']);
    if (chance(r, 0.8)) ingress['ports'] = Array.from({ length: int(r, 0, 6) }, () => ingressPort(r));
    c['ingress'] = ingress;
  }
  if (chance(r, 0.7)) {
    const egress: Record<string, unknown> = {};
    if (chance(r, 0.7)) egress['routes'] = Array.from({ length: int(r, 0, 5) }, () => route(r));
    if (chance(r, 0.4)) egress['capture'] = chance(r, 0.5);
    if (chance(r, 0.3)) egress['nonTcp'] = pick(r, ['drop', 'allow']);
    if (chance(r, 0.4)) {
      egress['exclude'] = chance(r, 0.3)
        ? {}
        : {
            ports: Array.from({ length: int(r, 0, 3) }, () => int(r, 1, 65535)),
            cidrs: Array.from({ length: int(r, 0, 2) }, () => pick(r, CIDRS.slice(0, 3))),
          };
    }
    c['egress'] = egress;
  }
  if (chance(r, 0.4)) {
    const dns: Record<string, unknown> = { enabled: chance(r, 0.7) };
    if (chance(r, 0.4)) dns['address'] = pick(r, DNS_ADDR.slice(0, 2));
    if (chance(r, 0.4)) dns['ttl'] = int(r, 0, 3600);
    if (chance(r, 0.4)) dns['upstreams'] = Array.from({ length: int(r, 0, 3) }, () => pick(r, UPSTREAMS.slice(0, 4)));
    if (chance(r, 0.2)) dns['resolvConf'] = '/tmp/resolv.conf';
    if (chance(r, 0.3)) dns['meshletUid'] = pick(r, [0, 1337, 2147483647]);
    c['dns'] = dns;
  }
  if (chance(r, 0.5)) {
    const proxy: Record<string, unknown> = {};
    for (const k of ['inboundPort', 'outboundPort', 'portlessEgressPort']) if (chance(r, 0.4)) proxy[k] = int(r, 1, 65535);
    if (chance(r, 0.3)) proxy['uid'] = int(r, 1, 65534);
    if (chance(r, 0.3)) proxy['gid'] = int(r, 1, 65534);
    if (chance(r, 0.1)) proxy['adminAddress'] = pick(r, LOOPBACK.slice(0, 3));
    if (chance(r, 0.3)) proxy['xdsSocket'] = '/run/x/xds.sock';
    if (chance(r, 0.3)) proxy['bootstrapPath'] = '/run/x/envoy.json';
    c['proxy'] = proxy;
  }
  if (chance(r, 0.3)) c['metrics'] = { port: int(r, 1, 65535) };
  if (chance(r, 0.3)) c['probes'] = chance(r, 0.3) ? {} : { port: int(r, 1, 65535), checks: Array.from({ length: int(r, 0, 4) }, () => probe(r)) };
  if (chance(r, 0.3)) c['accessLog'] = chance(r, 0.5);
  if (chance(r, 0.3)) c['debug'] = chance(r, 0.3) ? {} : { address: pick(r, LOOPBACK.slice(0, 3)) };
  if (chance(r, 0.3)) c['tls'] = chance(r, 0.3) ? {} : { keyExchange: pick(r, ['pq-preferred', 'pq-required']) };
  return c;
}

/** Every [container, key] in the tree, to pick a place to break. */
function places(root: unknown): [Record<string | number, unknown>, string | number][] {
  const out: [Record<string | number, unknown>, string | number][] = [];
  const walk = (n: unknown): void => {
    if (n === null || typeof n !== 'object') return;
    for (const [k, v] of Object.entries(n)) {
      out.push([n as Record<string, unknown>, Array.isArray(n) ? Number(k) : k]);
      walk(v);
    }
  };
  walk(root);
  return out;
}

const WRONG = [null, true, false, 0, -1, 1.5, 65536, 2 ** 31, 2 ** 53, -0, '', 'x', '80', [], {}, [1], { a: 1 }, Number.NaN];
const BAD_STRINGS = [...NAMES.slice(7), ...LISTEN.slice(3), ...REMOTE.slice(4), ...ROUTE_NAMES.slice(3), ...CIDRS.slice(3), ...LOOPBACK.slice(3)];

/** One small mistake somewhere: a wrong type, a number out of range, a bad string, an unknown or missing key. */
function breakOne(r: Rand, c: Record<string, unknown>): void {
  const all = places(c);
  const [where, key] = all.length > 0 && chance(r, 0.9) ? pick(r, all) : [c as Record<string | number, unknown>, 'ingress'];
  const m = r();
  if (m < 0.15 && !Array.isArray(where)) where[`${String(key)}x`] = 1;
  else if (m < 0.3 && !Array.isArray(where)) delete where[key];
  else if (m < 0.55) where[key] = pick(r, WRONG);
  else if (m < 0.75) where[key] = pick(r, [...BAD_STRINGS, ...DNS_ADDR.slice(2), ...UPSTREAMS.slice(4), ...PATHS.slice(2)]);
  else if (m < 0.9) where[key] = typeof where[key] === 'number' ? pick(r, PORTS.slice(5)) : pick(r, WRONG);
  else if (Array.isArray(where[key])) (where[key] as unknown[]).push(...Array.from({ length: 33 }, () => pick(r, WRONG)));
  else where[key] = [where[key]];
}

describe('the generated validator agrees with zod', () => {
  it('on 4,000 generated configs, valid and slightly broken: same acceptance, same value, same key order', () => {
    const r = prng(SEED);
    const tally = { both: 0, neither: 0 };
    for (let i = 0; i < 4_000; i++) {
      const c = validConfig(r);
      const broken = chance(r, 0.5);
      if (broken) for (let n = int(r, 1, 2); n > 0; n--) breakOne(r, c);
      const { fast, zod } = agree(c);
      // Plain data with no undefined in it: fast decides it and must decide like zod, both ways.
      expect(fast, `fast and zod disagree on ${JSON.stringify(c).slice(0, 400)}`).toBe(zod);
      if (!broken) expect(zod, `a generated valid config was refused: ${JSON.stringify(c).slice(0, 400)}`).toBe(true);
      tally[fast ? 'both' : 'neither']++;
    }
    // Both kinds in numbers, or the comparison would prove little.
    expect(tally.both).toBeGreaterThan(1_500);
    expect(tally.neither).toBeGreaterThan(1_000);
  });

  it('hands to zod what it does not decide, and never accepts it differently', () => {
    const cases: unknown[] = [
      {},
      { ingress: undefined },
      { ingress: { ports: [{ name: 'web', port: 80, policy: undefined }] } },
      { egress: { routes: [{ name: 'db', listen: '127.0.0.1:5432', remote: 'db:5432', sni: undefined }] } },
      Object.create({ inherited: 1 }) as unknown,
      new (class Config {})(),
      Object.assign(Object.create(null) as object, { accessLog: true }),
      JSON.parse('{"__proto__": {"accessLog": true}}'),
      { ingress: { ports: new Array(2) } },
      { [Symbol('s')]: 1, accessLog: true },
      [],
      null,
      'ingress: {}',
      42,
    ];
    for (const c of cases) agree(c);
    expect(validateFast({ ingress: undefined })).toBeUndefined();
    expect(validateFast(Object.create({ inherited: 1 }))).toBeUndefined();
    expect(validateFast(Object.assign(Object.create(null) as object, { accessLog: true }))).toEqual(schemas().configSchema.parse({ accessLog: true }));
  });

  it('hands out fresh defaults: changing one returned config does not change the next', () => {
    const a = validateFast({})!;
    a.ingress.ports.push({ name: 'x', port: 1 });
    a.egress.exclude.cidrs.push('198.18.0.0/15');
    expectSame(validateFast({}), schemas().configSchema.parse({}));
  });
});

// ---- shipped and fixture configs ----

/** Config documents in YAML files and in the ```yaml blocks of the docs that zod accepts, by where they are. */
function shippedConfigs(): [string, unknown][] {
  const out: [string, unknown][] = [];
  const yamlFiles = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true, recursive: true })
      .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
      .map((e) => path.join(e.parentPath, e.name));
  for (const file of [...yamlFiles('config'), ...yamlFiles('deploy')]) {
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
      const js = doc.toJS() as unknown;
      const data = (js as { kind?: string; data?: Record<string, string> } | null)?.kind === 'ConfigMap' ? (js as { data: Record<string, string> }).data : {};
      for (const [k, text] of Object.entries(data)) if (/\.ya?ml$/.test(k)) out.push([`${file} ${k}`, parse(text) as unknown]);
      if ((js as { kind?: string } | null)?.kind === undefined) out.push([file, js]);
    }
  }
  for (const file of ['README.md', ...readdirSync('docs').map((f) => path.join('docs', f))].filter((f) => f.endsWith('.md'))) {
    for (const m of readFileSync(file, 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)) {
      try {
        out.push([`${file} yaml block`, parse(m[1]!) as unknown]);
      } catch {
        // A fragment, not a document.
      }
    }
  }
  return out;
}

describe('shipped and fixture configs', () => {
  it('every shipped example and every config in the docs that zod accepts is accepted with the same value', () => {
    let accepted = 0;
    for (const [where, raw] of shippedConfigs()) {
      const zod = schemas().configSchema.safeParse(raw ?? {});
      const fast = validateFast(raw ?? {});
      if (!zod.success) {
        expect(fast, where).toBeUndefined();
        continue;
      }
      expect(fast, where).toBeDefined();
      expectSame(fast, zod.data);
      accepted++;
    }
    expect(accepted).toBeGreaterThanOrEqual(4);
  });

  it('the test fixtures (iptables cases, Envoy configs) are accepted with the same value, and validateConfig gives the same model', () => {
    const fixtures: [string, unknown][] = [...Object.entries(CASES), ['FULL', FULL], ['MAPPED', MAPPED], ['DISABLED', DISABLED]];
    for (const [name, raw] of fixtures) {
      const zod = schemas().configSchema.safeParse(raw);
      expect(zod.success, name).toBe(true);
      expectSame(validateFast(raw), zod.data);
      expect(validateConfig(raw).ok, name).toBe(true);
    }
  });

  it('a config of 1,000 ports and 1,000 routes is accepted with the same value', () => {
    const raw = {
      ingress: { mode: 'tproxy', ports: Array.from({ length: 1_000 }, (_, i) => ({ name: `p${i}`, port: 20_000 + i, policy: i % 2 ? 'tls' : 'mtls' })) },
      egress: {
        routes: Array.from({ length: 1_000 }, (_, i) => ({
          name: `r${i}`,
          listen: `127.10.${i >> 8}.${i & 255}:${9000 + (i % 100)}`,
          remote: `svc-${i}.example:443`,
          names: [`svc-${i}.example`],
        })),
      },
    };
    expectSame(validateFast(raw), schemas().configSchema.parse(raw));
  });
});
