// The probes and accessLog fields: defaults, the implied plaintext exemption
// of the probe port, every cross-field rule, and what a reload may change.
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { formatError } from '../../src/config/errors.js';
import { validateConfig } from '../../src/config/validate.js';
import type { RawConfigInput } from '../../src/config/schema.js';
import { generateRules } from '../../src/iptables/index.js';
import { reloadConfig } from '../../src/run/reload.js';
import { snapshotFor } from '../../src/run/snapshot-for.js';
import { FAKE_CERTS, meshConfig } from '../envoy/configs.js';

const errorsOf = (raw: unknown): string[] => {
  const r = validateConfig(raw);
  return r.ok ? [] : r.errors.map(formatError);
};
const CHECKS = [
  { name: 'web', kind: 'http', port: 8080, path: '/healthz' },
  { name: 'raw', kind: 'tcp', port: 9000 },
  { name: 'rpc', kind: 'grpc', port: 50051 },
] as const;

describe('probes and accessLog config', () => {
  it('are off by default; a probes section defaults to port 15021 and normalizes each kind', () => {
    const none = meshConfig({});
    expect(none.probes).toBeUndefined();
    expect(none.accessLog).toBe(false);
    const c = meshConfig({ probes: { checks: [...CHECKS] }, accessLog: true });
    expect(c.accessLog).toBe(true);
    expect(c.probes).toEqual({
      port: 15021,
      checks: [
        { name: 'web', kind: 'http', port: 8080, path: '/healthz', timeoutSeconds: 1 },
        { name: 'raw', kind: 'tcp', port: 9000, timeoutSeconds: 1 },
        { name: 'rpc', kind: 'grpc', port: 50051, service: '', timeoutSeconds: 1 },
      ],
    });
  });

  it('tproxy mode: the probe port becomes a plaintext port, so the rules let the kubelet reach it', () => {
    const c = meshConfig({ probes: { port: 15021, checks: [] } });
    expect(c.ingress.ports).toEqual([{ name: 'meshlet-probes', port: 15021, policy: 'plaintext', allowedSans: [], allowTls12: false }]);
    const v4 = generateRules(c).v4.tables.flatMap((t) => t.chains.flatMap((ch) => ch.rules));
    const ret = v4.findIndex((r) => /--dport 15021 .*-j RETURN$/.test(r));
    const tproxy = v4.findIndex((r) => r.includes('-j TPROXY'));
    expect(ret).toBeGreaterThanOrEqual(0);
    expect(ret).toBeLessThan(tproxy);
    // Mapped mode with a TLS default drops every port it does not map, so the probe port is opened as plaintext there too.
    expect(meshConfig({ ingress: { mode: 'mapped' }, probes: {} }).ingress.ports).toEqual([
      { name: 'meshlet-probes', port: 15021, policy: 'plaintext', allowedSans: [], allowTls12: false },
    ]);
    // A plaintext default intercepts and drops nothing: no entry needed.
    expect(meshConfig({ ingress: { mode: 'mapped', default: 'plaintext' }, probes: {} }).ingress.ports).toEqual([]);
    expect(meshConfig({ ingress: { default: 'plaintext' }, probes: {} }).ingress.ports).toEqual([]);
  });

  it.each<[string, unknown, string[]]>([
    [
      'http without a path',
      { probes: { checks: [{ name: 'a', kind: 'http', port: 8080 }] } },
      ['probes.checks[0].path: is required for kind "http": the path the kubelet probed, e.g. /healthz (got nothing)'],
    ],
    [
      'a path on a tcp probe',
      { probes: { checks: [{ name: 'a', kind: 'tcp', port: 8080, path: '/x' }] } },
      ['probes.checks[0].path: only valid with kind "http"; remove it or change the kind (got "/x")'],
    ],
    [
      'a service on an http probe',
      { probes: { checks: [{ name: 'a', kind: 'http', port: 8080, path: '/', service: 's' }] } },
      ['probes.checks[0].service: only valid with kind "grpc"; remove it or change the kind (got "s")'],
    ],
    [
      'a path without a slash',
      { probes: { checks: [{ name: 'a', kind: 'http', port: 8080, path: 'healthz' }] } },
      ['probes.checks[0].path: must start with "/" and hold only printable ASCII without spaces (got "healthz")'],
    ],
    [
      'an unknown kind',
      { probes: { checks: [{ name: 'a', kind: 'exec', port: 8080 }] } },
      ['probes.checks[0].kind: must be one of "http", "tcp", "grpc" (got "exec")'],
    ],
    [
      'a name that is not a path segment',
      { probes: { checks: [{ name: 'a/b', kind: 'tcp', port: 8080 }] } },
      [expect.stringMatching(/^probes\.checks\[0\]\.name: must be 1-63 letters/)],
    ],
    [
      'duplicate names',
      {
        probes: {
          checks: [
            { name: 'a', kind: 'tcp', port: 1 },
            { name: 'a', kind: 'tcp', port: 2 },
          ],
        },
      },
      ['probes.checks[1].name: duplicate name: already used by probes.checks[0] (got "a")'],
    ],
    [
      'a check of an Envoy port',
      { probes: { checks: [{ name: 'a', kind: 'tcp', port: 15006 }] } },
      ["probes.checks[0].port: is meshlet's or Envoy's own port (proxy.inboundPort), not the app's; use the port the app listens on (got 15006)"],
    ],
    [
      'a check of the probe port',
      { probes: { checks: [{ name: 'a', kind: 'tcp', port: 15021 }] } },
      ["probes.checks[0].port: is meshlet's or Envoy's own port (probes.port), not the app's; use the port the app listens on (got 15021)"],
    ],
    ['the probe port on a proxy port', { probes: { port: 15001 } }, ['probes.port: port is already used by proxy.outboundPort; pick another port (got 15001)']],
    [
      'the probe port on the metrics port',
      { probes: { port: 9100 }, metrics: { port: 9100 } },
      ['probes.port: port is already used by metrics.port; pick another port (got 9100)'],
    ],
    [
      'the probe port on a listed app port',
      { probes: { port: 8080 }, ingress: { ports: [{ name: 'w', port: 8080 }] } },
      ['probes.port: port is already used by ingress.ports[0].port; the probe port is always plaintext; pick another port or remove that entry (got 8080)'],
    ],
    [
      'the probe port on a mapped port',
      { probes: {}, ingress: { mode: 'mapped', ports: [{ name: 'w', port: 8080, mappedPort: 15021 }] } },
      ['probes.port: port is already used by ingress.ports[0].mappedPort; pick another port (got 15021)'],
    ],
    [
      'the probe port on an egress listener',
      { probes: {}, egress: { routes: [{ name: 'r', listen: '127.0.0.9:15021', remote: 'x:1' }] } },
      ['probes.port: port is already used by egress.routes[0].listen; pick another port (got 15021)'],
    ],
    [
      'a timeout above a minute',
      { probes: { checks: [{ name: 'a', kind: 'tcp', port: 1, timeoutSeconds: 61 }] } },
      ['probes.checks[0].timeoutSeconds: must be in 1-60 (got 61)'],
    ],
    ['accessLog as a string', { accessLog: 'yes' }, ['accessLog: must be a boolean (got "yes")']],
  ])('refuses %s, naming the field and the fix', (_what, raw, errors) => {
    expect(errorsOf(raw)).toEqual(errors);
  });

  it('caps the number of probes', () => {
    const checks = Array.from({ length: 33 }, (_, i) => ({ name: `p${i}`, kind: 'tcp', port: 1000 + i }));
    expect(errorsOf({ probes: { checks } })).toEqual([expect.stringMatching(/^probes\.checks: must list at most 32 probes/)]);
  });
});

describe('reloading probes and accessLog', () => {
  const base: RawConfigInput = {
    ingress: { ports: [{ name: 'web', port: 8080 }] },
    probes: { checks: [{ name: 'web', kind: 'http', port: 8080, path: '/healthz' }] },
  };
  const prev = (() => {
    const config = meshConfig(base);
    return { config, certs: FAKE_CERTS, snapshot: snapshotFor(config, FAKE_CERTS) };
  })();

  it('turns access logs on and off: a listener change, no new rules', () => {
    const on = reloadConfig(stringify({ ...base, accessLog: true }), 'config.yaml', prev);
    expect(on.ok).toBe(true);
    if (!on.ok) return;
    expect(JSON.stringify(on.desired.snapshot)).not.toBe(JSON.stringify(prev.snapshot));
    expect(reloadConfig(stringify({ ...base, accessLog: false }), 'config.yaml', on.desired).ok).toBe(true);
  });

  it('applies edited checks, but a moved or removed probe port needs a restart', () => {
    expect(reloadConfig(stringify({ ...base, probes: { checks: [{ name: 'web', kind: 'tcp', port: 8080 }] } }), 'config.yaml', prev).ok).toBe(true);
    for (const edit of [{ ...base, probes: { port: 15031 } }, { ingress: base.ingress }]) {
      const r = reloadConfig(stringify(edit), 'config.yaml', prev);
      expect(r.ok).toBe(false);
      expect(r.ok ? '' : r.error).toMatch(/restart the pod/);
    }
    // With a plaintext default the probe port needs no rule, so the reload path itself must refuse it.
    const mapped = meshConfig({ ingress: { mode: 'mapped', default: 'plaintext' }, probes: {} });
    const r = reloadConfig(stringify({ ingress: { mode: 'mapped', default: 'plaintext' }, probes: { port: 15031 } }), 'config.yaml', {
      config: mapped,
      certs: FAKE_CERTS,
      snapshot: snapshotFor(mapped, FAKE_CERTS),
    });
    expect(r.ok ? '' : r.error).toMatch(/probes\.port, metrics\.port\); restart the pod/);
  });
});
