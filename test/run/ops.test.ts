// Operations with a real Envoy: hot reload, certificate rotation under load,
// the debug endpoint (keys redacted), wait-ready and dump. Loopback only;
// mapped mode, so no iptables are needed.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { findEnvoy } from '../../src/envoy/binary.js';
import { Meshlet } from '../../src/run/service.js';
import { TYPE_URL } from '../../src/xds/protos.js';
import {
  cleanupPod,
  envoyAdminJson,
  getJson,
  getText,
  inProcess,
  makePod,
  rotateCerts,
  startMeshlet,
  until,
  waitReady,
  writeConfig,
  type Pod,
  MESHLET,
} from '../helpers/meshlet.js';
import { startEchoApp, steadyLoad, tlsExchange } from '../helpers/traffic.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const run = promisify(execFile);
const cleanups = cleanupAfterEach();

const mapped =
  (policy: string) =>
  (base: number): Record<string, unknown> => ({ ingress: { mode: 'mapped', ports: [{ name: 'app', port: base + 50, mappedPort: base + 51, policy }] } });

async function meshPod(policy = 'tls'): Promise<{ p: Pod; meshlet: Meshlet; logFile: string; port: number }> {
  const p = await makePod(mapped(policy));
  cleanups.push(() => cleanupPod(p));
  const app = await startEchoApp(p.base + 50);
  cleanups.push(() => app.close());
  const { meshlet, logFile } = await inProcess(p, (f) => cleanups.push(f), { envoyConfigDump: true, watch: { pollMs: 200 } });
  await waitReady(p);
  return { p, meshlet, logFile, port: p.base + 51 };
}

async function stat(p: Pod, name: string): Promise<number> {
  const body = await envoyAdminJson<{ stats: { name: string; value?: number }[] }>(p, `/stats?format=json&filter=${encodeURIComponent(`^${name}$`)}`);
  return body.stats[0]?.value ?? -1;
}

function clientCert(p: Pod): { cert: string; key: string; ca: string } {
  return { cert: p.leaf.chainPem, key: p.leaf.keyPem, ca: p.pki.caPem };
}

describe('hot reload', () => {
  it('a config edit takes effect without restarting Envoy: tls becomes mtls', async () => {
    const { p, meshlet, port } = await meshPod('tls');
    const pid = meshlet.envoyPid;
    expect((await tlsExchange(port, 'no-cert')).reply).toBe('echo:no-cert');
    const acked = new Promise<void>((resolve) => meshlet.ads.onAck((e) => e.typeUrl === TYPE_URL.listener && resolve()));
    writeConfig(p, { ...p.config, ...mapped('mtls')(p.base) });
    await acked;
    // ACKed is not yet serving: the updated listener warms first. /ready waits for it.
    await waitReady(p);
    await expect(tlsExchange(port, 'no-cert')).rejects.toThrow();
    expect((await tlsExchange(port, 'with-cert', clientCert(p))).reply).toBe('echo:with-cert');
    expect(meshlet.envoyPid).toBe(pid);
    expect(meshlet.metrics.reloads.get({ kind: 'config' })).toBe(1);
    expect(meshlet.metrics.changeToAck.total).toBe(1);
  });

  it('an invalid edit is refused, counted and shown, while traffic keeps flowing on the last good config', async () => {
    const { p, meshlet, port } = await meshPod('tls');
    const load = steadyLoad((i) => tlsExchange(port, `m${i}`), 5_000, 20_000);
    writeConfig(p, `${stringify(p.config)}\ningress:\n  mode: mapped\n  ports: [{ name: app, port: 99999, mappedPort: ${port} }]\n`);
    await until('the reload error', () => (meshlet.metrics.reloadErrors.get({ kind: 'config' }) >= 1 ? true : undefined));
    const xds = (await getJson<{ reloads: { ok: boolean; error?: string }[] }>(`http://127.0.0.1:${p.ports.debug}/xds`)).body;
    expect(xds.reloads.at(-1)?.ok).toBe(false);
    // A duplicate key is a YAML error; the error names it.
    expect(xds.reloads.at(-1)?.error).toMatch(/line \d+|ingress/);
    writeConfig(p, { ...p.config, ingress: { mode: 'mapped', ports: [{ name: 'app', port: 99999, mappedPort: port }] } });
    await until('the second reload error', () => (meshlet.metrics.reloadErrors.get({ kind: 'config' }) >= 2 ? true : undefined));
    const second = (await getJson<{ reloads: { ok: boolean; error?: string }[] }>(`http://127.0.0.1:${p.ports.debug}/xds`)).body.reloads.at(-1);
    expect(second?.error).toBe('ingress.ports[0].port: must be in 1-65535 (got 99999)');
    const metrics = (await getText(`http://127.0.0.1:${p.ports.debug}/metrics`)).body;
    expect(metrics).toMatch(/meshlet_reload_errors_total\{kind="config"\} 2/);
    const result = await load.stop();
    expect(result.failed).toBe(0);
    expect(result.ok).toBeGreaterThan(0);
    expect((await tlsExchange(port, 'still')).reply).toBe('echo:still');
    expect(meshlet.metrics.reloads.get({ kind: 'config' })).toBe(0);
  });

  it('an edit that needs new iptables rules is refused with the reason', async () => {
    const { p, meshlet } = await meshPod('tls');
    writeConfig(p, { ...p.config, egress: { capture: true } });
    await until('the refusal', () => (meshlet.metrics.reloadErrors.get({ kind: 'config' }) >= 1 ? true : undefined));
    const last = (await getJson<{ reloads: { error?: string }[] }>(`http://127.0.0.1:${p.ports.debug}/xds`)).body.reloads.at(-1);
    expect(last?.error).toMatch(/changes the iptables rules.*restart the pod/);
  });
});

describe('certificate rotation through SDS', () => {
  it('100 rotations under steady load: zero failed connections, new handshakes present the new certificate, listeners untouched', async () => {
    const { p, meshlet, port } = await meshPod('tls');
    const modified0 = await stat(p, 'listener_manager.listener_modified');
    const listenerPushes0 = meshlet.metrics.pushes.get({ type: 'Listener' });
    const clusterPushes0 = meshlet.metrics.pushes.get({ type: 'Cluster' });
    const load = steadyLoad((i) => tlsExchange(port, `r${i}`), 50_000, 150_000);
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const leaf = await p.pki.issueLeaf({ sans: ['web'] });
      await rotateCerts(p, leaf);
      const serial = new (await import('node:crypto')).X509Certificate(leaf.certPem).serialNumber;
      await until(`rotation ${i + 1} presented`, async () => ((await tlsExchange(port, 'probe')).serverSerial === serial ? true : undefined), 10_000, 10);
      seen.add(serial);
    }
    const result = await load.stop();
    expect(seen.size).toBe(100);
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(result.ok).toBeGreaterThan(100);
    expect(await stat(p, 'listener_manager.listener_modified')).toBe(modified0);
    expect(meshlet.metrics.pushes.get({ type: 'Listener' })).toBe(listenerPushes0);
    expect(meshlet.metrics.pushes.get({ type: 'Cluster' })).toBe(clusterPushes0);
    expect(meshlet.metrics.reloads.get({ kind: 'certs' })).toBe(100);
    // Each rotation's change → ACK time was observed (named SDS under Delta included).
    expect(meshlet.metrics.changeToAck.total).toBe(100);
  }, 240_000);

  it('refuses a chain and key that do not match, and a chain the CA did not sign; the old certificate stays', async () => {
    const { p, meshlet, port } = await meshPod('tls');
    const before = (await tlsExchange(port, 'a')).serverSerial;
    const fresh = await p.pki.issueLeaf({ sans: ['web'] });
    await rotateCerts(p, { ...fresh, keyPem: (await p.pki.issueLeaf({ sans: ['web'] })).keyPem });
    await until('mismatch refused', () => (meshlet.metrics.reloadErrors.get({ kind: 'certs' }) >= 1 ? true : undefined));
    const { createPki } = await import('../../src/devpki/pki.js');
    const other = await createPki(`${p.dir}/other-ca`);
    await rotateCerts(p, await other.issueLeaf({ sans: ['web'] }));
    await until('foreign chain refused', () => (meshlet.metrics.reloadErrors.get({ kind: 'certs' }) >= 2 ? true : undefined));
    const reloads = (await getJson<{ reloads: { kind: string; error?: string }[] }>(`http://127.0.0.1:${p.ports.debug}/xds`)).body.reloads.filter(
      (r) => r.kind === 'certs',
    );
    expect(reloads[0]?.error).toMatch(/certs\.key .*does not match/);
    expect(reloads[1]?.error).toMatch(/certs\.certChain .*(CA|issuer)/i);
    expect((await tlsExchange(port, 'b')).serverSerial).toBe(before);
    expect(meshlet.metrics.reloads.get({ kind: 'certs' })).toBe(0);
  });
});

describe('debug endpoint', () => {
  it(
    "serves /healthz, /ready, /xds and /metrics on loopback, and never the private key: not in /xds, not in Envoy's config_dump passthrough, not " +
      'in the logs',
    async () => {
      const { p, logFile } = await meshPod('tls');
      const base = `http://127.0.0.1:${p.ports.debug}`;
      expect((await getText(`${base}/healthz`)).status).toBe(200);
      const ready = await getJson<{ ready: boolean; checks: Record<string, { ok: boolean }> }>(`${base}/ready`);
      expect(ready.status).toBe(200);
      expect(Object.keys(ready.body.checks)).toEqual(['iptables', 'xdsAcked', 'envoyListeners']);
      const xds = await getText(`${base}/xds`);
      const dump = await getText(`${base}/config_dump`);
      const metrics = (await getText(`${base}/metrics`)).body;
      for (const m of [
        'meshlet_xds_pushes_total',
        'meshlet_xds_acks_total',
        'meshlet_xds_nacks_total',
        'meshlet_reloads_total',
        'meshlet_reload_errors_total',
        'meshlet_change_to_ack_seconds_bucket',
      ])
        expect(metrics).toContain(m);
      // The key's base64 body lines must appear nowhere.
      const keyLines = p.leaf.keyPem.split('\n').filter((l) => l && !l.startsWith('-----'));
      expect(keyLines.length).toBeGreaterThan(0);
      const logs = readFileSync(logFile, 'utf8');
      for (const [where, text] of [
        ['/xds', xds.body],
        ['/config_dump', dump.body],
        ['logs', logs],
      ] as const) {
        for (const line of keyLines) expect(text.includes(line), `${where} leaks the key`).toBe(false);
        expect(text).not.toMatch(/BEGIN (EC |RSA )?PRIVATE KEY/);
      }
      expect(xds.body).toContain('meshlet-workload');
      expect(xds.body).toContain('[redacted]');
      // The same exemptions list `meshlet check` prints, the proxy uid first.
      const exemptionList = (JSON.parse(xds.body) as { exemptions?: { field: string }[] }).exemptions ?? [];
      expect(exemptionList[0]?.field).toBe('proxy.uid');
      expect(dump.body).toContain('dynamic_active_secrets');
      // The certificate itself is public and stays visible.
      expect(xds.body).toContain(p.leaf.certPem.split('\n')[1]);
    },
  );

  it('meshlet dump prints the state for a person, and --json for tools', async () => {
    const { p } = await meshPod('tls');
    const human = (await run(process.execPath, [...MESHLET, 'dump', '--config', p.configPath])).stdout;
    expect(human).toMatch(/^ready: yes$/m);
    expect(human).toMatch(/Listener version [0-9a-f]{12}: meshlet-mapped-app/);
    expect(human).toMatch(/Listener: ACKed [0-9a-f]{12} \(current\)/);
    const json = JSON.parse((await run(process.execPath, [...MESHLET, 'dump', '--json', '--config', p.configPath])).stdout) as {
      ready: { ready: boolean };
      xds: { envoys: unknown[] };
    };
    expect(json.ready.ready).toBe(true);
    expect(json.xds.envoys).toHaveLength(1);
  });
});

describe('meshlet wait-ready', () => {
  it('fails with the reason while not ready, and succeeds once Envoy ACKed and listens', async () => {
    const p = await makePod(mapped('tls'));
    cleanups.push(() => cleanupPod(p));
    const app = await startEchoApp(p.base + 50);
    cleanups.push(() => app.close());
    // No Envoy: never ready.
    const noEnvoy = startMeshlet(p, ['--no-envoy']);
    cleanups.push(async () => void (await noEnvoy.stop()));
    await until('debug endpoint', async () => ((await getText(`http://127.0.0.1:${p.ports.debug}/healthz`)).status === 200 ? true : undefined));
    const fail = await run(process.execPath, [...MESHLET, 'wait-ready', '--config', p.configPath, '--timeout', '1']).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(fail.code).toBe(1);
    expect(fail.stderr).toMatch(/not ready after 1s.*no Envoy is connected/s);
    await noEnvoy.stop();
    const m = startMeshlet(p, ['--envoy', findEnvoy()]);
    cleanups.push(async () => void (await m.stop()));
    const ok = await run(process.execPath, [...MESHLET, 'wait-ready', '--config', p.configPath, '--timeout', '30']);
    expect(ok.stderr).toBe('');
    expect((await tlsExchange(p.base + 51, 'ready')).reply).toBe('echo:ready');
  });
});
