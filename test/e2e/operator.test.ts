// What operators expect of a sidecar, in network namespaces with real Envoys:
// the kubelet's probes through meshlet's app-health port (from a namespace
// outside the pod, while the app's own port demands mTLS), connection access
// logs (one JSON line per connection, peer SAN, response flags, switched by a
// hot reload), and one Prometheus scrape of Envoy's and meshlet's series.
//
//   api     tproxy, default mtls; an HTTP, a TCP and a grpc-js health app;
//           probes for all three, metrics port 15090, access logs on
//   legacy  mapped mode, the app bound to 127.0.0.1 only (as mapped mode allows)
//   client  ingress disabled; egress routes 127.10.0.1:8080 → api-svc:8080 and one to a
//           closed port of the kubelet namespace; access logs on
//   kubelet a namespace outside every pod (the node), no certificate
//   stranger another outside namespace, whose only connection is one refused handshake
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailable, MeshLab, type Host, type Pod } from '../../src/demo/lab.js';
import type { HealthAppConfig } from '../../src/demo/health-app.js';
import type { Proc } from '../../src/demo/proc.js';
import { cannotRun } from '../helpers/gate.js';
import { startOrClose } from './support.js';

const skip = cannotRun('operators: kubelet probes, access logs, one scrape', labUnavailable());
const HEALTH_APP = path.resolve('dist/src/demo/health-app.js');
const PROBES = 15021;
const METRICS = 15090;
const KINDS = { web: { kind: 'http', port: 8080 }, raw: { kind: 'tcp', port: 9000 }, rpc: { kind: 'grpc', port: 50051 } } as const;

type AccessLine = Record<string, string | number | null>;

describe.skipIf(skip)('operators: kubelet probes, access logs, one scrape', () => {
  let lab: MeshLab;
  let api: Pod;
  let legacy: Pod;
  let client: Pod;
  let kubelet: Host;
  let stranger: Host;
  const apps = new Map<string, Proc>();

  const startApp = async (pod: Pod, key: string, cfg: HealthAppConfig): Promise<Proc> => {
    const p = lab.ns.spawn(pod.ns, `${cfg.kind} app in ${pod.name}`, [process.execPath, HEALTH_APP, JSON.stringify(cfg)]);
    await p.waitFor((l) => l.includes('"ev":"listening"'), 10_000, `the ${cfg.kind} app in ${pod.name} listening`);
    apps.set(key, p);
    return p;
  };

  /** A kubelet-style HTTP request from outside the pod: the status code, or "000" when nothing answered. */
  const curl = async (from: Host | Pod, url: string, extra: string[] = []): Promise<{ code: string; body: string }> => {
    const r = await lab.ns.exec(from.ns, ['curl', '-sS', '--max-time', '10', '-A', 'kube-probe/1.31', '-o', '-', '-w', '\n%{http_code}', ...extra, url], {
      timeoutMs: 20_000,
    });
    const i = r.stdout.lastIndexOf('\n');
    return { code: r.stdout.slice(i + 1), body: r.stdout.slice(0, Math.max(i, 0)) };
  };

  const accessLines = (pod: Pod, since = 0): AccessLine[] =>
    (pod.meshlet?.lines ?? [])
      .slice(since)
      .filter((l) => l.includes('"log":"meshlet-access"'))
      .map((l) => JSON.parse(l) as AccessLine);

  /** Waits for the n-th access-log line (from `since`) that matches. */
  const waitAccess = async (pod: Pod, match: (a: AccessLine) => boolean, n = 1, since = 0, what = 'an access-log line'): Promise<void> => {
    let k = 0;
    let i = 0;
    await pod.meshlet!.waitFor(
      (l) => {
        if (i++ < since || !l.includes('"log":"meshlet-access"')) return false;
        return match(JSON.parse(l) as AccessLine) && ++k === n;
      },
      15_000,
      `${what} (#${n}) from ${pod.name}`,
    );
  };

  beforeAll(async () => {
    lab = await MeshLab.create({
      pods: [
        {
          name: 'api',
          config: {
            ingress: { mode: 'tproxy', default: 'mtls' },
            probes: {
              checks: [
                { name: 'web', kind: 'http', port: 8080, path: '/healthz' },
                { name: 'raw', kind: 'tcp', port: 9000 },
                { name: 'rpc', kind: 'grpc', port: 50051 },
              ],
            },
            metrics: { port: METRICS },
            accessLog: true,
          },
        },
        {
          name: 'legacy',
          config: {
            ingress: { mode: 'mapped', ports: [{ name: 'web', port: 8080, mappedPort: 8443, policy: 'mtls' }] },
            probes: { checks: [{ name: 'web', kind: 'http', port: 8080, path: '/healthz' }] },
          },
        },
        {
          name: 'client',
          config: {
            ingress: { mode: 'disabled' },
            egress: {
              routes: [
                { name: 'api', listen: '127.10.0.1:8080', remote: 'api-svc:8080' },
                // Nothing listens there: Envoy's upstream connection fails.
                { name: 'dead', listen: '127.10.0.2:8080', remote: '198.18.0.100:7777' },
              ],
            },
            accessLog: true,
          },
        },
      ],
      hosts: [{ name: 'kubelet' }, { name: 'stranger' }],
    });
    await startOrClose(lab, async () => {
      [api, legacy, client] = ['api', 'legacy', 'client'].map((n) => lab.pod(n)) as [Pod, Pod, Pod];
      kubelet = lab.host('kubelet');
      stranger = lab.host('stranger');
      for (const [name, k] of Object.entries(KINDS)) await startApp(api, name, k);
      await startApp(legacy, 'legacy', { kind: 'http', port: 8080, host: '127.0.0.1' });
    });
  }, 120_000);

  afterAll(async () => {
    expect((await lab?.close()) ?? []).toEqual([]);
  }, 60_000);

  it('the kubelet reaches /app-health/<name> from outside the pod on IPv4 and IPv6, while the app port itself demands mTLS', async () => {
    for (const host of [api.v4, `[${api.v6}]`]) {
      for (const name of Object.keys(KINDS))
        expect((await curl(kubelet, `http://${host}:${PROBES}/app-health/${name}`)).code, `${name} via ${host}`).toBe('200');
    }
    // The checks went straight to the app from the pod's own address, not through Envoy (127.0.0.6).
    const check = JSON.parse(await apps.get('web')!.waitFor((l) => l.includes('"path":"/healthz"'), 5_000, 'the http check')) as { peer: string; ua: string };
    expect(check).toMatchObject({ peer: api.v4, ua: 'meshlet-probe' });
    // The kubelet's original probe, in clear, gets nothing from the mTLS port; its TCP probe is refused by the handshake.
    expect((await curl(kubelet, `http://${api.v4}:8080/healthz`)).code).toBe('000');
    const tlsNoCert = await lab.http(kubelet, api.v4, 8080, '/healthz', { tls: { ca: path.join(api.certDir, 'mesh-ca.pem'), servername: 'api-svc' } });
    expect(tlsNoCert.status).toBeUndefined();
  });

  it.each(Object.entries(KINDS))('%s: /app-health goes 200 → 503 → 200 as the app stops and starts', async (name, k) => {
    const url = `http://${api.v4}:${PROBES}/app-health/${name}`;
    expect((await curl(kubelet, url)).code).toBe('200');
    await apps.get(name)!.stop();
    const down = await curl(kubelet, url);
    expect(down.code).toBe('503');
    expect(down.body).toMatch(/^failed: /);
    await startApp(api, name, k);
    expect((await curl(kubelet, url)).code).toBe('200');
  });

  it('mapped mode: the probe reaches an app bound to loopback only, where Envoy reaches it', async () => {
    const url = `http://${legacy.v4}:${PROBES}/app-health/web`;
    expect((await curl(kubelet, url)).code).toBe('200');
    await apps.get('legacy')!.stop();
    expect((await curl(kubelet, url)).code).toBe('503');
    await startApp(legacy, 'legacy', { kind: 'http', port: 8080, host: '127.0.0.1' });
    expect((await curl(kubelet, url)).code).toBe('200');
  });

  it('the probe port serves nothing else', async () => {
    const base = `http://${api.v4}:${PROBES}`;
    expect((await curl(kubelet, `${base}/app-health/nope`)).code).toBe('404');
    expect((await curl(kubelet, `${base}/stats/prometheus`)).code).toBe('404');
    expect((await curl(kubelet, `${base}/app-health/web?x=1`)).code).toBe('404');
    expect((await curl(kubelet, `${base}/app-health/web`, ['-X', 'POST'])).code).toBe('405');
  });

  it('one access-log line per mTLS connection on each side, with the peer SAN and TLS version', async () => {
    const [clientMark, apiMark] = [client.meshlet!.lines.length, api.meshlet!.lines.length];
    const fromClient = (a: AccessLine): boolean => a['downstream_peer_dns_san'] === 'client-svc';
    for (let i = 0; i < 3; i++) expect((await lab.http(client, '127.10.0.1', 8080, `/via-route-${i}`)).status).toBe(200);
    await waitAccess(api, fromClient, 3, apiMark, 'the inbound mTLS line');
    await waitAccess(client, (a) => a['chain'] === 'meshlet-route-api', 3, clientMark, 'the outbound route line');
    // A fourth connection's line is written after any duplicate of the first three would have been.
    expect((await lab.http(client, '127.10.0.1', 8080, '/via-route-3')).status).toBe(200);
    await waitAccess(api, fromClient, 4, apiMark, 'the fourth inbound line');
    await waitAccess(client, (a) => a['chain'] === 'meshlet-route-api', 4, clientMark, 'the fourth outbound line');
    const inbound = accessLines(api, apiMark).filter(fromClient);
    expect(inbound).toHaveLength(4);
    for (const a of inbound) {
      expect(a).toMatchObject({ downstream_tls_version: 'TLSv1.3', response_flags: '-', upstream_host: `${api.v4}:8080` });
      // Envoy's hop to the app, from the address the rules never intercept.
      expect(a['upstream_local']).toMatch(/^127\.0\.0\.6:/);
      expect(a['downstream_remote']).toMatch(new RegExp(`^${client.v4.replace(/\./g, '\\.')}:`));
      expect(a['bytes_from_downstream']).toBeGreaterThan(0);
      expect(a['bytes_to_downstream']).toBeGreaterThan(0);
      expect(typeof a['duration_ms']).toBe('number');
      expect(String(a['start_time'])).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    const outbound = accessLines(client, clientMark).filter((a) => a['chain'] === 'meshlet-route-api');
    expect(outbound).toHaveLength(4);
    for (const a of outbound)
      expect(a).toMatchObject({
        upstream_peer_dns_san: 'api-svc',
        upstream_tls_version: 'TLSv1.3',
        upstream_host: `${api.v4}:8080`,
        cluster: 'meshlet-route-api',
      });
    // Never payload, never key material.
    const all = JSON.stringify([...accessLines(api), ...accessLines(client)]);
    expect(all).not.toContain('via-route');
    expect(all).not.toContain('PRIVATE KEY');
  });

  it('a refused handshake is one line naming the TLS failure; a failed upstream is one line with its response flag', async () => {
    const mark = api.meshlet!.lines.length;
    const fromStranger = (a: AccessLine): boolean => String(a['downstream_remote']).startsWith(`${stranger.v4}:`);
    const refused = await lab.http(stranger, api.v4, 8080, '/no-cert-2', { tls: { ca: path.join(api.certDir, 'mesh-ca.pem'), servername: 'api-svc' } });
    expect(refused.status).toBeUndefined();
    await waitAccess(api, fromStranger, 1, mark, 'the refused handshake line');
    const clientMark = client.meshlet!.lines.length;
    expect((await lab.http(client, '127.10.0.2', 8080, '/dead')).status).toBeUndefined();
    await waitAccess(client, (a) => a['chain'] === 'meshlet-route-dead', 1, clientMark, 'the failed upstream line');
    // The stranger made one connection, and it is one line.
    const handshakes = accessLines(api, mark).filter(fromStranger);
    expect(handshakes).toHaveLength(1);
    // Envoy sets no response flag for a failed downstream handshake; the failure reason says what happened.
    expect(handshakes[0]).toMatchObject({
      downstream_local: `${api.v4}:8080`,
      downstream_peer_dns_san: null,
      bytes_from_downstream: 0,
      bytes_to_downstream: 0,
    });
    expect(String(handshakes[0]?.['downstream_tls_failure'])).toContain('PEER_DID_NOT_RETURN_A_CERTIFICATE');
    const dead = accessLines(client, clientMark).filter((a) => a['chain'] === 'meshlet-route-dead');
    expect(dead).toHaveLength(1);
    expect(String(dead[0]?.['response_flags']).split(',')).toContain('UF');
    expect(dead[0]).toMatchObject({ cluster: 'meshlet-route-dead', upstream_peer_dns_san: null, bytes_to_downstream: 0 });
  });

  it('a hot reload turns access logs off and on again, with no new iptables rules', async () => {
    const file = client.configPath!;
    const write = async (on: boolean): Promise<void> => {
      const mark = client.meshlet!.lines.length;
      const cfg = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      writeFileSync(`${file}.tmp`, stringify({ ...cfg, accessLog: on }));
      renameSync(`${file}.tmp`, file);
      let i = 0;
      await client.meshlet!.waitFor((l) => i++ >= mark && l.includes('"msg":"reload applied"'), 15_000, `the reload with accessLog: ${on}`);
      await lab.waitReady(client);
    };
    await write(false);
    const mark = client.meshlet!.lines.length;
    expect((await lab.http(client, '127.10.0.1', 8080, '/while-off')).status).toBe(200);
    await write(true);
    expect((await lab.http(client, '127.10.0.1', 8080, '/after-on')).status).toBe(200);
    await waitAccess(client, (a) => a['chain'] === 'meshlet-route-api', 1, mark, 'the line after logs are back on');
    // The stdout logger writes in order, so the connection made while logs were off would be out by now.
    expect(accessLines(client, mark).filter((a) => a['chain'] === 'meshlet-route-api')).toHaveLength(1);
    expect(client.meshlet!.lines.slice(mark).join('\n')).not.toContain('reload refused');
  });

  it("an outside scrape of the metrics port returns Envoy's and meshlet's series; POST and other paths are refused", async () => {
    expect((await curl(kubelet, `http://${api.v4}:${PROBES}/app-health/web`)).code).toBe('200');
    await apps.get('rpc')!.stop();
    expect((await curl(kubelet, `http://${api.v4}:${PROBES}/app-health/rpc`)).code).toBe('503');
    await startApp(api, 'rpc', KINDS.rpc);
    const r = await curl(kubelet, `http://[${api.v6}]:${METRICS}/stats/prometheus`);
    expect(r.code).toBe('200');
    expect(r.body).toMatch(/^envoy_server_live(\{\})? 1$/m);
    expect(r.body).toMatch(/^envoy_listener_downstream_cx_total\{/m);
    expect(r.body).toMatch(/^meshlet_xds_acks_total\{type="Listener"\} [1-9]/m);
    expect(r.body).toMatch(/^meshlet_app_probes_total\{probe="web",result="pass"\} [1-9]/m);
    expect(r.body).toMatch(/^meshlet_app_probes_total\{probe="rpc",result="fail"\} [1-9]/m);
    const types = r.body
      .split('\n')
      .filter((l) => l.startsWith('# TYPE '))
      .map((l) => l.split(' ')[2] ?? '');
    expect(new Set(types).size, 'each metric family once').toBe(types.length);
    expect(types.filter((t) => !t.startsWith('envoy_') && !t.startsWith('meshlet_'))).toEqual([]);
    const base = `http://${api.v4}:${METRICS}`;
    expect((await curl(kubelet, `${base}/stats/prometheus`, ['-X', 'POST'])).code).toBe('405');
    expect((await curl(kubelet, `${base}/config_dump`)).code).toBe('404');
    expect((await curl(kubelet, `${base}/app-health/web`)).code).toBe('404');
  });
});
