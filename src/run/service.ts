// `meshlet run`: the wiring. Order matters (ARCHITECTURE.md, startup order):
// config and certs are checked first, then the xDS socket is bound with the
// snapshot already in place, then Envoy starts, then the watchers.
import { lchown } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import type { Logger } from '../log.js';
import type { LoadedConfig } from '../config/load.js';
import type { ConfigGate } from '../config/trust.js';
import type { MeshConfig } from '../config/model.js';
import { exemptions } from '../config/exemptions.js';
import { loadCerts } from '../certs/index.js';
import { AdsServer } from '../xds/server.js';
import { TYPE_URL } from '../xds/protos.js';
import { typeOf, type Snapshot } from '../xds/snapshot.js';
import { buildBootstrap, renderBootstrap } from '../envoy/bootstrap.js';
import { EnvoySupervisor } from '../envoy/supervisor.js';
import { adminGet, adminReachProblem, ensureProxyDir, type AdminResponse } from '../envoy/admin.js';
import { adminDir, adminSocketPath } from '../config/constants.js';
import { endStaleEnvoys } from '../envoy/stale.js';
import { Metrics, renderCounters } from '../debug/metrics.js';
import { startDebugServer } from '../debug/server.js';
import { startPublicServer } from '../debug/public.js';
import { redact } from '../debug/redact.js';
import { probeCounter, probeHost, startProbeServer } from '../debug/probes.js';
import { mappedPorts } from '../xds/builders/listeners-inbound.js';
import { FileWatcher } from '../reload/watcher.js';
import { rulesReady } from './rules-check.js';
import { prepareRuntimeDir } from './runtime-dir.js';
import { PUBLIC_MODE, writeFileAtomic } from '../fs/safe-write.js';
import { DnsService } from '../dns/index.js';
import { readiness } from './readiness.js';
import { reloadCerts, reloadConfig, snapshotFor, type Desired, type Outcome } from './reload.js';

export interface RunOptions {
  loaded: LoadedConfig;
  logger: Logger;
  /** Path of the Envoy binary; undefined with noEnvoy. */
  envoyPath?: string;
  noEnvoy?: boolean;
  delta?: boolean;
  skipIptablesCheck?: boolean;
  envoyConfigDump?: boolean;
  nodeId?: string;
  envoyLogLevel?: string;
  envoyArgs?: string[];
  watch?: { debounceMs?: number; pollMs?: number };
}

interface ReloadRecord {
  kind: 'config' | 'certs';
  at: string;
  ok: boolean;
  error?: string;
}

export class Meshlet {
  readonly metrics = new Metrics();
  readonly ads: AdsServer;
  private desired: Desired;
  private supervisor: EnvoySupervisor | undefined;
  private debug: Server | undefined;
  private publicServer: Server | undefined;
  private probeServer: Server | undefined;
  private dns: DnsService | undefined;
  private readonly watchers: FileWatcher[] = [];
  private readonly reloads: ReloadRecord[] = [];
  /** Changes waiting for Envoy's ACK: type URL → version, and when the change was seen. */
  private pending: { at: number; versions: Map<string, string> }[] = [];
  private readonly log: Logger;
  private stopping = false;

  constructor(private readonly opts: RunOptions) {
    this.log = opts.logger;
    const { config } = opts.loaded;
    const certs = loadCerts(config.certs);
    this.desired = { config, certs, snapshot: snapshotFor(config, certs) };
    this.ads = new AdsServer({ socketPath: config.proxy.xdsSocket, logger: opts.logger.child({ component: 'xds' }), snapshot: this.desired.snapshot });
    this.ads.onResponse((e) => this.metrics.pushes.inc({ type: short(e.typeUrl) }));
    this.ads.onAck((e) => {
      this.metrics.acks.inc({ type: short(e.typeUrl) });
      this.settle();
    });
    this.ads.onNack((e) => this.metrics.nacks.inc({ type: short(e.typeUrl) }));
  }

  get config(): Desired['config'] {
    return this.desired.config;
  }

  async start(): Promise<void> {
    const { config } = this.desired;
    // Before anything binds: without admin, readiness and draining cannot work.
    const reach = this.opts.noEnvoy ? undefined : adminReachProblem(config.proxy.uid);
    if (reach) throw new Error(reach);
    // DNS first: a uid the rules do not exempt, or a taken port, fails before anything starts (docs/dns.md).
    if (config.dns) this.dns = await DnsService.start(config, this.log.child({ component: 'dns' }));
    const dns = this.dns;
    if (dns) this.metrics.addCollector(() => renderCounters('meshlet_dns_queries_total', 'DNS queries by outcome: answered (route names), forwarded, errors, dropped, loops', 'outcome', outcomes(dns.stats)));
    const gate = this.opts.loaded.gate;
    if (gate) this.metrics.addCollector(() => renderCounters('meshlet_config_updates_refused_total', "Config file updates refused because the pod's policy does not cover them, by reason", 'reason', Object.fromEntries(gate.refused)));
    this.prepareRuntimeDirs();
    await this.ads.listen();
    await this.handSocketToProxy();
    this.writeBootstrap();
    if (!this.opts.noEnvoy) {
      if (!this.opts.envoyPath) throw new Error('internal: envoyPath missing');
      // Before our Envoy starts: an Envoy left by an earlier meshlet would
      // share our listeners' ports (SO_REUSEPORT) and serve its old config.
      await endStaleEnvoys({ bootstrapPath: config.proxy.bootstrapPath, uid: config.proxy.uid, gid: config.proxy.gid, logger: this.log.child({ component: 'supervisor' }) });
      // The access checks spawn processes; they run while Envoy boots instead
      // of before it, and a failure still fails the start.
      const access = this.checkProxyAccess(this.opts.envoyPath);
      const s = new EnvoySupervisor({
        envoyPath: this.opts.envoyPath,
        bootstrapPath: config.proxy.bootstrapPath,
        uid: config.proxy.uid,
        gid: config.proxy.gid,
        adminSocket: this.adminSocket,
        logger: this.log.child({ component: 'supervisor' }),
        ...(this.opts.envoyLogLevel ? { logLevel: this.opts.envoyLogLevel } : {}),
        ...(this.opts.envoyArgs ? { extraArgs: this.opts.envoyArgs } : {}),
      });
      s.on('start', (_pid, restarts) => {
        if (restarts > 0) this.metrics.envoyRestarts.inc();
      });
      s.start();
      this.supervisor = s;
      try {
        await access;
      } catch (err) {
        await s.stop(0);
        throw err;
      }
    }
    this.debug = await startDebugServer(config.debug, {
      ready: () => this.ready(),
      xds: () => this.xdsView(),
      metrics: this.metrics,
      ...(this.opts.envoyConfigDump ? { envoyConfigDump: () => this.envoyConfigDump() } : {}),
    });
    if (config.metrics) {
      this.publicServer = await startPublicServer(config.metrics.port, { adminGet: (p) => this.admin(p), metrics: this.metrics, ready: () => this.ready() });
    }
    if (config.probes) {
      const counter = probeCounter();
      this.metrics.addCollector(() => counter.render());
      this.probeServer = await startProbeServer(config.probes.port, {
        checks: () => this.desired.config.probes?.checks ?? [],
        host: (p) => probeHost(new Set(this.desired.config.ingress.mode === 'mapped' ? mappedPorts(this.desired.config).map((m) => m.port) : []), p),
        counter,
      });
    }
    await this.startWatchers();
    const trust = this.opts.loaded.gate?.trust() ?? this.opts.loaded.trust;
    this.log.info({ source: this.opts.loaded.source, trust: trust.mode, configSha256: trust.sha256, configVersion: trust.version, socket: config.proxy.xdsSocket, debug: `${config.debug.ip}:${config.debug.port}` }, 'meshlet serving');
  }

  /** Envoy's admin socket: only root (meshlet) and the proxy uid can open it. */
  get adminSocket(): string {
    return adminSocketPath(this.desired.config.proxy.xdsSocket);
  }

  /** One request to Envoy's admin; refuses a socket the proxy uid does not own. */
  admin(urlPath: string, opts: { method?: 'GET' | 'POST'; timeoutMs?: number } = {}): Promise<AdminResponse> {
    return adminGet(this.adminSocket, urlPath, { timeoutMs: 5_000, ...opts, ownerUid: this.desired.config.proxy.uid });
  }

  get envoyPid(): number | undefined {
    return this.supervisor?.pid;
  }

  /**
   * The runtime directory (and the bootstrap's, when elsewhere) must be
   * meshlet's alone before anything is created in it by path; the proxy uid
   * gets only its own `envoy/` subdirectory.
   */
  private prepareRuntimeDirs(): void {
    const { uid, gid, xdsSocket, bootstrapPath } = this.desired.config.proxy;
    const runtimeDir = path.dirname(xdsSocket);
    prepareRuntimeDir(runtimeDir, uid);
    if (path.dirname(bootstrapPath) !== runtimeDir) prepareRuntimeDir(path.dirname(bootstrapPath), uid);
    // Envoy creates its admin socket in envoy/; only the proxy uid may enter.
    ensureProxyDir(adminDir(xdsSocket), uid, gid);
  }

  /**
   * The socket is 0600 and must belong to the uid Envoy runs as. lchown
   * never follows a link, and the name cannot have been swapped: the
   * directory was checked to be writable by meshlet alone.
   */
  private async handSocketToProxy(): Promise<void> {
    const { uid, gid, xdsSocket } = this.desired.config.proxy;
    if (process.getuid?.() !== 0) return;
    await lchown(xdsSocket, uid, gid);
  }

  /**
   * Fails early, with the fix, when the proxy uid cannot run the Envoy binary
   * (e.g. pip put it under /root), read the bootstrap or reach the socket.
   */
  private async checkProxyAccess(envoyPath: string): Promise<void> {
    const { uid, gid, bootstrapPath, xdsSocket } = this.desired.config.proxy;
    if (process.getuid?.() !== 0) return;
    const asProxy = async (test: string, file: string, fix: string): Promise<void> => {
      try {
        await promisify(execFile)('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', 'test', test, file]);
      } catch {
        throw new Error(`the proxy uid ${uid} cannot ${fix}`);
      }
    };
    // Concurrently: these sit on the start-to-ready path.
    await Promise.all([
      asProxy('-x', envoyPath, `execute Envoy at ${envoyPath} (a binary under /root is not reachable); install it system-wide (scripts/setup.sh copies it to /usr/local/bin/envoy) or pass --envoy PATH`),
      asProxy('-r', bootstrapPath, `read the bootstrap ${bootstrapPath}; make every parent directory searchable by that uid, or set proxy.bootstrapPath`),
      asProxy('-w', xdsSocket, `reach the xDS socket ${xdsSocket}; make every parent directory searchable by that uid, or set proxy.xdsSocket`),
    ]);
  }

  private writeBootstrap(): void {
    const { config } = this.desired;
    const text = renderBootstrap(buildBootstrap(config, { nodeId: this.opts.nodeId ?? `meshlet~${hostname()}`, cluster: 'meshlet', delta: this.opts.delta ?? true }));
    // Envoy (another uid) must read it; it holds the socket path and ports, no secret.
    writeFileAtomic(config.proxy.bootstrapPath, text, PUBLIC_MODE);
  }

  private async startWatchers(): Promise<void> {
    const { config } = this.desired;
    const w = this.opts.watch ?? {};
    const source = this.opts.loaded.file;
    if (source !== undefined) {
      const gate = this.opts.loaded.gate;
      // A pinned config: the start version becomes the floor a sidecar restart cannot go below.
      gate?.persist();
      const cw = new FileWatcher(gate ? [source, gate.sigFile] : [source], w);
      cw.on('change', (contents, at) => {
        const text = contents.get(source);
        if (text === undefined) this.record('config', at, { ok: false, error: `${source}: file disappeared; keeping the last good config` });
        else if (gate) this.recordGated(gate, at, text, contents.get(gate.sigFile));
        else this.record('config', at, reloadConfig(text, source, this.desired));
      });
      await cw.start();
      this.watchers.push(cw);
    }
    const certFiles = [config.certs.ca, config.certs.certChain, config.certs.key];
    const kw = new FileWatcher(certFiles, w);
    kw.on('change', (_contents, at) => this.record('certs', at, reloadCerts(this.desired)));
    await kw.start();
    this.watchers.push(kw);
  }

  /** A pinned config's update: the gate admits it (signature, version) before it is even parsed. */
  private recordGated(gate: ConfigGate, at: number, text: string, sig: string | undefined): void {
    const a = gate.admit(text, sig);
    if (a.kind === 'same') return;
    if (a.kind === 'refuse') {
      this.log.warn({ reason: a.reason, trust: gate.trust().mode }, 'config update refused: not covered by the pod\'s policy');
      this.record('config', at, { ok: false, error: a.error });
      return;
    }
    const outcome = reloadConfig(a.text, gate.file, this.desired);
    // Only an update that is actually served raises the version floor.
    if (outcome.ok) gate.commit(a);
    this.record('config', at, outcome);
  }

  /** Applies a reload outcome, or records why it was refused. */
  private record(kind: 'config' | 'certs', at: number, outcome: Outcome): void {
    const entry: ReloadRecord = { kind, at: new Date(at).toISOString(), ok: outcome.ok };
    if (outcome.ok) {
      this.apply(outcome.desired, at);
      this.metrics.reloads.inc({ kind });
      this.log.info({ kind, versions: Object.fromEntries(versions(outcome.desired.snapshot)) }, 'reload applied');
    } else {
      entry.error = outcome.error;
      this.metrics.reloadErrors.inc({ kind });
      this.log.error({ kind, error: outcome.error }, 'reload refused; the last good config keeps serving');
    }
    this.reloads.push(entry);
    if (this.reloads.length > 20) this.reloads.shift();
  }

  /** Test seam and reload path: serve a new desired state. */
  apply(desired: Desired, changedAt = Date.now()): void {
    const before = versions(this.desired.snapshot);
    const after = versions(desired.snapshot);
    const changed = new Map([...after].filter(([t, v]) => before.get(t) !== v));
    this.desired = desired;
    this.dns?.update(desired.config);
    if (changed.size > 0) this.pending.push({ at: changedAt, versions: changed });
    this.ads.setSnapshot(desired.snapshot);
  }

  /**
   * A change counts as ACKed when every connected Envoy is in sync on each
   * type the change touched. (Comparing versions would miss named SDS under
   * Delta: an Envoy that holds only some secrets ACKs a version over those.)
   */
  private settle(): void {
    const now = Date.now();
    const envoys = this.ads.status().envoys;
    if (envoys.length === 0) return;
    this.pending = this.pending.filter((p) => {
      for (const t of [...p.versions.keys()]) if (envoys.every((e) => e.types[t]?.inSync !== false)) p.versions.delete(t);
      if (p.versions.size > 0) return true;
      this.metrics.changeToAck.observe((now - p.at) / 1000);
      return false;
    });
    // An Envoy that never answers must not grow this list forever.
    if (this.pending.length > 100) this.pending.splice(0, this.pending.length - 100);
  }

  ready(): ReturnType<typeof readiness> {
    const config = this.desired.config;
    return readiness({
      status: () => this.ads.status(),
      listeners: () => {
        const lds = typeOf(this.desired.snapshot, TYPE_URL.listener);
        return { names: [...lds.resources.keys()], version: lds.version };
      },
      admin: (p) => this.admin(p),
      stopping: () => this.stopping,
      ...(this.opts.skipIptablesCheck ? {} : { rules: () => this.rulesCached(config) }),
    });
  }

  private rulesOk: { config: MeshConfig; at: number } | undefined;
  private rulesInFlight: { config: MeshConfig; promise: Promise<{ ok: boolean; missing: string[] }> } | undefined;
  private rulesWereOk = true;

  /**
   * Reading the rules spawns iptables-save and ip per family (measured: about
   * 40 ms of CPU with the children, 100 ms wall on a loaded 2-core machine);
   * a probe polling /ready should not do that
   * many times a second. Concurrent requests share one check, and a positive
   * answer is kept for RULES_OK_TTL_MS only, so a change that lets traffic
   * past the rules shows on /ready within that time plus one check.
   */
  private async rulesCached(config: MeshConfig): Promise<{ ok: boolean; missing: string[] }> {
    if (this.rulesOk?.config === config && Date.now() - this.rulesOk.at < RULES_OK_TTL_MS) return { ok: true, missing: [] };
    if (this.rulesInFlight?.config === config) return this.rulesInFlight.promise;
    const promise = rulesReady(config).then((r) => {
      this.rulesOk = r.ok ? { config, at: Date.now() } : undefined;
      // Once per transition: someone changed the rules under a running pod.
      if (!r.ok && this.rulesWereOk) this.log.warn({ missing: r.missing }, 'iptables rules no longer intact: /ready is 503 until meshlet init runs again (restart the pod)');
      if (r.ok && !this.rulesWereOk) this.log.info('iptables rules intact again');
      this.rulesWereOk = r.ok;
      return r;
    });
    this.rulesInFlight = { config, promise };
    try {
      return await promise;
    } finally {
      if (this.rulesInFlight?.promise === promise) this.rulesInFlight = undefined;
    }
  }

  xdsView(): unknown {
    const snap = this.desired.snapshot;
    const types = Object.fromEntries(
      Object.values(snap.types).map((t) => [t.typeUrl, { version: t.version, resources: [...t.resources.values()].map((r) => r.json) }]),
    );
    const trust = this.opts.loaded.gate?.trust() ?? this.opts.loaded.trust;
    return redact({ source: this.opts.loaded.source, trust, exemptions: exemptions(this.desired.config), types, envoys: this.ads.status().envoys, reloads: this.reloads });
  }

  private async envoyConfigDump(): Promise<unknown> {
    const res = await this.admin('/config_dump', { timeoutMs: 2_000 });
    if (res.status !== 200) throw new Error(`Envoy admin /config_dump: HTTP ${res.status}`);
    return redact(JSON.parse(res.body));
  }

  async stop(drainMs = 5_000): Promise<void> {
    this.stopping = true;
    for (const w of this.watchers) w.close();
    await this.supervisor?.stop(drainMs);
    await new Promise<void>((r) => (this.debug ? this.debug.close(() => r()) : r()));
    await new Promise<void>((r) => (this.publicServer ? this.publicServer.close(() => r()) : r()));
    await new Promise<void>((r) => (this.probeServer ? this.probeServer.close(() => r()) : r()));
    await this.ads.close();
    await this.dns?.close();
  }
}

/** How long a positive rules check is trusted (see rulesCached). */
export const RULES_OK_TTL_MS = 1_000;

function outcomes(s: DnsService['stats']): Record<string, number> {
  return { answered: s.answered, forwarded: s.forwarded, errors: s.errors, dropped: s.dropped, loops: s.loops };
}

function short(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
}

function versions(s: Snapshot): Map<string, string> {
  return new Map([TYPE_URL.cluster, TYPE_URL.listener, TYPE_URL.secret].map((t) => [t, typeOf(s, t).version]));
}
