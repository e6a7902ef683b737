// meshlet run against a real Envoy, supervised as uid 1337 with only
// CAP_NET_ADMIN: every feature ACKed and active, NACK handling through a test
// seam, restarts of either side (Envoy never outlives meshlet), and SIGTERM.
// Loopback traffic only.
import { describe, expect, it } from 'vitest';
import { openSync, closeSync, readFileSync, copyFileSync, chmodSync, mkdirSync } from 'node:fs';
import { createRootLogger } from '../../src/log.js';
import { loadConfig } from '../../src/config/load.js';
import { findEnvoy } from '../../src/envoy/binary.js';
import { Meshlet, type RunOptions } from '../../src/run/service.js';
import { execFileRunner } from '../../src/iptables/runner.js';
import { snapshotFor } from '../../src/run/snapshot-for.js';
import { buildResources } from '../../src/xds/builders/index.js';
import { buildSnapshot, typeOf } from '../../src/xds/snapshot.js';
import { TYPE_URL } from '../../src/xds/protos.js';
import { findStaleEnvoys } from '../../src/envoy/stale.js';
import { parseAllDocuments } from 'yaml';
import { cleanupPod, envoyAdminJson, inProcess, makePod, startMeshlet, until, waitReady, type Pod, type MeshletProcess } from '../helpers/meshlet.js';
import { startEchoApp, tlsExchange, type EchoApp } from '../helpers/traffic.js';
import { procGone } from '../helpers/wait.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const cleanups = cleanupAfterEach();

function track<T extends { stop: () => Promise<unknown> }>(x: T): T {
  cleanups.push(async () => void (await x.stop()));
  return x;
}

async function pod(extra: Record<string, unknown> | ((base: number) => Record<string, unknown>)): Promise<Pod> {
  const p = await makePod(extra);
  cleanups.push(() => cleanupPod(p));
  return p;
}

async function app(port: number): Promise<EchoApp> {
  const a = await startEchoApp(port);
  cleanups.push(() => a.close());
  return a;
}

/** Mapped mode: app on base+50, Envoy on base+51. No iptables needed, so it runs on loopback. */
const mapped = (base: number): Record<string, unknown> => ({
  ingress: { mode: 'mapped', ports: [{ name: 'app', port: base + 50, mappedPort: base + 51, policy: 'tls' }] },
});
const appPortOf = (p: Pod): number => p.base + 50;
const mappedPortOf = (p: Pod): number => p.base + 51;

interface ConfigDump {
  configs: Record<string, unknown>[];
}

async function envoyDump(p: Pod): Promise<ConfigDump> {
  return envoyAdminJson<ConfigDump>(p, '/config_dump?include_eds');
}

function section(dump: ConfigDump, suffix: string): Record<string, unknown> {
  const s = dump.configs.find((c) => String(c['@type']).endsWith(suffix));
  if (!s) throw new Error(`config_dump has no ${suffix}`);
  return s;
}

describe('meshlet run with a real Envoy', () => {
  it('serves every feature: each listener, cluster and secret is active and not warming, every response ACKed, zero NACKs', async () => {
    const p = await pod({
      ingress: {
        mode: 'tproxy',
        default: 'mtls',
        ports: [
          { name: 'web', port: 8080, policy: 'tls' },
          { name: 'metrics', port: 7890, policy: 'plaintext' },
          { name: 'admin-api', port: 8443, policy: 'mtls', allowedSans: ['ops'] },
        ],
      },
      egress: {
        routes: [
          { name: 'emoji', listen: '127.137.0.1:8081', remote: 'emoji-svc:8080' },
          { name: 'voting', listen: '127.137.0.2:8081', remote: '198.18.0.20:8080', sni: 'voting-svc', expectedSans: ['voting-svc'] },
          { name: 'db', listen: '127.137.0.3', remote: 'db-svc' },
        ],
        capture: true,
        exclude: { ports: [443], cidrs: ['198.19.0.0/16', '2001:db8:ff::/48'] },
      },
    });
    const { meshlet } = await inProcess(p, (f) => cleanups.push(f));
    let nacks = 0;
    meshlet.ads.onNack(() => nacks++);
    await waitReady(p);

    const snap = meshlet.ads.currentSnapshot();
    const want = (t: keyof typeof TYPE_URL): string[] => [...typeOf(snap, TYPE_URL[t]).resources.keys()].sort();
    const dump = await envoyDump(p);
    const listeners = section(dump, 'ListenersConfigDump')['dynamic_listeners'] as { name: string; active_state?: unknown; warming_state?: unknown }[];
    expect(listeners.map((l) => l.name).sort()).toEqual(want('listener'));
    expect(listeners.every((l) => l.active_state && !l.warming_state)).toBe(true);
    expect(want('listener')).toEqual(['meshlet-inbound', 'meshlet-outbound', 'meshlet-portless', 'meshlet-route-emoji', 'meshlet-route-voting']);
    const clusters = section(dump, 'ClustersConfigDump');
    const active = (clusters['dynamic_active_clusters'] as { cluster: { name: string } }[]).map((c) => c.cluster.name).sort();
    expect(active).toEqual(want('cluster'));
    expect(clusters['dynamic_warming_clusters'] ?? []).toEqual([]);
    const secrets = (section(dump, 'SecretsConfigDump')['dynamic_active_secrets'] as { name: string }[]).map((s) => s.name).sort();
    expect(secrets).toEqual(want('secret'));
    expect(nacks).toBe(0);
    const status = meshlet.ads.status();
    expect(status.envoys).toHaveLength(1);
    for (const t of Object.values(status.envoys[0]?.types ?? {})) {
      expect(t.inSync).toBe(true);
      expect(t.nackedVersion).toBeNull();
    }
    const metrics = meshlet.metrics.render();
    expect(metrics).toMatch(/meshlet_xds_nacks_total 0/);
    expect(meshlet.metrics.acks.get({ type: 'Listener' })).toBeGreaterThanOrEqual(1);
  });

  it('a NACKed push is recorded, not resent, and the previous config keeps serving', async () => {
    const p2 = await pod(mapped);
    const mappedPort = mappedPortOf(p2);
    await app(appPortOf(p2));
    const { meshlet } = await inProcess(p2, (f) => cleanups.push(f));
    await waitReady(p2);
    expect((await tlsExchange(mappedPort, 'before')).reply).toBe('echo:before');
    const good = meshlet.ads.currentSnapshot();

    // The seam: a listener Envoy must reject (two filter chains with the same match).
    const desired = { config: meshlet.config, certs: loadCertsFor(p2), snapshot: good };
    const resources = buildResources(desired.config, desired.certs);
    const broken = resources.listeners.map((l) => ({
      ...l,
      filter_chains: [...(l['filter_chains'] as object[]), ...(l['filter_chains'] as object[])],
    })) as typeof resources.listeners;
    const nacked = new Promise<{ error: string; version: string }>((resolve) => meshlet.ads.onNack((e) => resolve(e)));
    let responses = 0;
    meshlet.ads.onResponse((e) => {
      if (e.typeUrl === TYPE_URL.listener) responses++;
    });
    meshlet.apply({ ...desired, snapshot: buildSnapshot({ ...resources, listeners: broken }) });
    const nack = await nacked;
    expect(nack.error).toMatch(/has the same matching rules defined as/);
    const before = responses;
    // No resend loop: a later change on another type (one more cluster) goes out on the same stream and is
    // ACKed; Envoy handles the stream in order, so an LDS resend triggered by the NACK would have been
    // received, and counted, before that ACK.
    const probeCluster = { ...(resources.clusters[0] as object), name: 'meshlet-test-flush' } as (typeof resources.clusters)[number];
    const flushed = new Promise<void>((resolve) => meshlet.ads.onAck((e) => e.typeUrl === TYPE_URL.cluster && resolve()));
    meshlet.apply({ ...desired, snapshot: buildSnapshot({ ...resources, clusters: [...resources.clusters, probeCluster], listeners: broken }) });
    await flushed;
    expect(responses).toBe(before);
    const envoy = meshlet.ads.status().envoys[0]?.types[TYPE_URL.listener];
    expect(envoy?.nackedVersion).toBe(nack.version);
    expect(envoy?.lastError).toMatch(/same matching rules/);
    expect(envoy?.ackedVersion).toBe(typeOf(good, TYPE_URL.listener).version);
    expect(meshlet.metrics.nacks.get({ type: 'Listener' })).toBe(1);
    // Previous config still serving new connections.
    expect((await tlsExchange(mappedPort, 'after')).reply).toBe('echo:after');
    // The fix goes out once and is ACKed.
    const acked = new Promise<void>((resolve) => meshlet.ads.onAck((e) => e.typeUrl === TYPE_URL.listener && resolve()));
    meshlet.apply({ ...desired, snapshot: snapshotFor(desired.config, desired.certs) });
    await acked;
  });

  it('Envoy killed: the supervisor restarts it and it gets its config back', async () => {
    const p = await pod(mapped);
    const mappedPort = mappedPortOf(p);
    await app(appPortOf(p));
    const { meshlet } = await inProcess(p, (f) => cleanups.push(f));
    await waitReady(p);
    const pid = meshlet.envoyPid;
    expect(pid).toBeDefined();
    process.kill(pid ?? 0, 'SIGKILL');
    await until('a new Envoy pid', () => (meshlet.envoyPid !== undefined && meshlet.envoyPid !== pid ? true : undefined));
    await waitReady(p);
    expect((await tlsExchange(mappedPort, 'again')).reply).toBe('echo:again');
    expect(meshlet.metrics.envoyRestarts.get()).toBe(1);
  });

  it('meshlet killed (SIGKILL): its Envoy dies with it, and a restarted meshlet serves again', async () => {
    const p = await pod(mapped);
    const mappedPort = mappedPortOf(p);
    await app(appPortOf(p));
    const first = track(startMeshlet(p, ['--envoy', findEnvoy()]));
    await waitReady(p);
    const envoyPid = Number(/"pid":(\d+),"restarts":0,(?:"startedBy":"launcher",)?"msg":"envoy started"/.exec(first.logs())?.[1]);
    expect(envoyPid).toBeGreaterThan(0);
    cleanups.push(() => {
      try {
        process.kill(envoyPid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    });
    first.child.kill('SIGKILL');
    await first.exited;
    // The parent-death signal: nothing of ours keeps serving a config nobody updates.
    await until(`Envoy ${envoyPid} gone after meshlet's SIGKILL`, () => (procGone(envoyPid) ? true : undefined), 10_000);
    expect(findStaleEnvoys(`${p.dir}/run/envoy.json`, 1337)).toEqual([]);
    await expect(tlsExchange(mappedPort, 'while-down', {}, 1_000)).rejects.toThrow();

    const second = track(startMeshlet(p, ['--envoy', findEnvoy()]));
    await waitReady(p);
    expect((await tlsExchange(mappedPort, 'after-restart')).reply).toBe('echo:after-restart');
    expect(second.logs()).not.toMatch(/envoy exited; restarting/);
  });

  it("root with exactly the manifest's capabilities reaches Envoy's admin and turns ready; without DAC_OVERRIDE it refuses to start, saying so", async () => {
    const manifest = parseAllDocuments(readFileSync('deploy/kubernetes/deployment.yaml', 'utf8'))[0]?.toJS() as {
      spec: { template: { spec: { initContainers: { name: string; securityContext: { capabilities: { add: string[] } } }[] } } };
    };
    const caps = manifest.spec.template.spec.initContainers.find((c) => c.name === 'meshlet')?.securityContext.capabilities.add ?? [];
    const shape = (list: string[]): string[] => ['setpriv', '--no-new-privs', `--bounding-set=-all,${list.map((c) => `+${c.toLowerCase()}`).join(',')}`, '--'];
    const p = await pod(mapped);
    await app(appPortOf(p));
    const m = track(startMeshlet(p, ['--envoy', findEnvoy()], { wrap: shape(caps) }));
    await waitReady(p);
    expect((await tlsExchange(mappedPortOf(p), 'shape')).reply).toBe('echo:shape');
    await m.stop();

    const without = track(startMeshlet(p, ['--envoy', findEnvoy()], { wrap: shape(caps.filter((c) => c !== 'DAC_OVERRIDE')) }));
    expect(await without.exited).not.toBe(0);
    expect(without.logs()).toMatch(/without CAP_DAC_OVERRIDE, so it cannot open Envoy's admin socket.*add DAC_OVERRIDE/);
  });

  it('SIGTERM: meshlet drains Envoy and exits cleanly within the bound', async () => {
    const p = await pod({});
    const m: MeshletProcess = startMeshlet(p, ['--envoy', findEnvoy()]);
    cleanups.push(() => void m.stop('SIGKILL'));
    await waitReady(p);
    // stop() sends SIGKILL after 10 s, which would make the exit code null: exit 0 means it drained and left on its own within the bound.
    const code = await m.stop('SIGTERM');
    expect(code).toBe(0);
    // Envoy is gone with it, and the socket was removed.
    await expect(envoyAdminJson(p, '/server_info')).rejects.toThrow();
    expect(() => readFileSync(`${p.dir}/run/xds.sock`)).toThrow(/ENOENT/);
    expect(m.logs()).toMatch(/stopping: draining Envoy/);
  });
});

function loadCertsFor(p: Pod): { caPem: string; chainPem: string; keyPem: string } {
  const r = (f: string): string => readFileSync(`${p.certDir}/${f}`, 'utf8');
  return { caPem: r('mesh-ca.pem'), chainPem: r('certChain.pem'), keyPem: r('key.pem') };
}

describe("proxy access: proven by Envoy's own ADS stream, checked as the proxy uid only when Envoy does not connect", () => {
  /** A Meshlet on this pod whose command runner records what it runs (the access check's processes go through it). */
  function meshletWith(p: Pod, envoyPath: string, extra: Partial<RunOptions> = {}): { meshlet: Meshlet; calls: string[][] } {
    const calls: string[][] = [];
    const fd = openSync(`${p.dir}/meshlet.log`, 'a');
    const meshlet = new Meshlet({
      loaded: loadConfig(p.configPath),
      logger: createRootLogger('debug', fd),
      skipIptablesCheck: true,
      envoyPath,
      iptables: { runner: { run: (cmd, args, o) => (calls.push([cmd, ...args]), execFileRunner.run(cmd, args, o)) } },
      ...extra,
    });
    cleanups.push(async () => {
      await meshlet.stop(0);
      closeSync(fd);
    });
    return { meshlet, calls };
  }

  it.skipIf(process.getuid?.() !== 0)('an Envoy without an execute bit: the start fails naming the binary and the fix, and no Envoy is left', async () => {
    const p = await pod({});
    const copy = `${p.dir}/envoy-not-executable`;
    copyFileSync(findEnvoy(), copy);
    chmodSync(copy, 0o644);
    const { meshlet, calls } = meshletWith(p, copy);
    await expect(meshlet.start()).rejects.toThrow(
      new RegExp(`^the proxy uid 1337 cannot execute Envoy at ${copy} \\(run as the supervisor runs it, it exited \\d+: .*\\); .*--envoy PATH$`),
    );
    // Only Envoy's exit made meshlet look: its binary as the supervisor runs it, then the two files as that uid.
    expect(calls.map((c) => c.slice(-2))).toEqual(expect.arrayContaining([[copy, '--version']]));
    const pid = meshlet.envoyPid;
    expect(pid === undefined || !alive(pid), `Envoy ${pid} still running`).toBe(true);
  });

  it.skipIf(process.getuid?.() !== 0)(
    "an Envoy in a root-only directory starts, as setpriv execs it with root's access to the path; it runs with CAP_NET_ADMIN alone, and no check process runs",
    async () => {
      const p = await pod({});
      const hidden = `${p.dir}/root-only`;
      mkdirSync(hidden, { mode: 0o700 });
      chmodSync(hidden, 0o700);
      copyFileSync(findEnvoy(), `${hidden}/envoy`);
      chmodSync(`${hidden}/envoy`, 0o755);
      const { meshlet, calls } = meshletWith(p, `${hidden}/envoy`);
      await meshlet.start();
      expect(meshlet.ads.status().envoys.length).toBe(1);
      expect(calls).toEqual([]);
      // What a compromised Envoy would hold: the proxy uid throughout, and no capability but CAP_NET_ADMIN (bit 12).
      const status = readFileSync(`/proc/${meshlet.envoyPid}/status`, 'utf8');
      expect(status).toMatch(/^Uid:\t1337\t1337\t1337\t1337$/m);
      for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(status).toMatch(new RegExp(`^${set}:\\t0000000000001000$`, 'm'));
    },
  );

  it.skipIf(process.getuid?.() !== 0)(
    'no stream when the wait is over: the access is checked as the proxy uid, and as it passes the start goes on',
    async () => {
      const p = await pod({});
      // A wait of 0 ms ends before any Envoy can have connected (its own start takes tens of milliseconds).
      const { meshlet, calls } = meshletWith(p, findEnvoy(), { accessCheckAfterMs: 0 });
      await meshlet.start();
      expect(calls.map((c) => c.slice(-2))).toEqual([
        [findEnvoy(), '--version'],
        ['-r', `${p.dir}/run/envoy.json`],
        ['-w', `${p.dir}/run/xds.sock`],
      ]);
      await until('Envoy ACKs every type', () => (meshlet.ads.status().envoys[0]?.types[TYPE_URL.listener]?.ackedVersion ? true : undefined), 20_000);
    },
  );
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
