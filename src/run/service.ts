// `meshlet run`: the wiring. Order matters (ARCHITECTURE.md, startup order):
// config and certs are checked first, then the xDS socket is bound with the
// snapshot already in place, then Envoy starts, then the watchers.
import { chown, mkdir, writeFile, rename, stat } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import type { Logger } from '../log.js';
import type { LoadedConfig } from '../config/load.js';
import type { ConfigGate } from '../config/trust.js';
import type { MeshConfig } from '../config/model.js';
import { loadCerts } from '../certs/index.js';
import { AdsServer } from '../xds/server.js';
import { TYPE_URL } from '../xds/protos.js';
import { typeOf, type Snapshot } from '../xds/snapshot.js';
import { buildBootstrap, renderBootstrap } from '../envoy/bootstrap.js';
import { EnvoySupervisor } from '../envoy/supervisor.js';
import { Metrics, renderCounters } from '../debug/metrics.js';
import { startDebugServer } from '../debug/server.js';
import { redact } from '../debug/redact.js';
import { FileWatcher } from '../reload/watcher.js';
import { rulesReady } from './rules-check.js';
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
  private dns: DnsService | undefined;
  private readonly watchers: FileWatcher[] = [];
  private readonly reloads: ReloadRecord[] = [];
  /** Changes waiting for Envoy's ACK: type URL → version, and when the change was seen. */
  private pending: { at: number; versions: Map<string, string> }[] = [];
  private readonly log: Logger;

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

  /**
   * Starts everything, in order. When a step fails, whatever already started
   * (the bound socket, DNS, Envoy, the debug server, watchers) is stopped
   * before the error propagates: those handles would otherwise keep the
   * process alive, serving a half-started sidecar until SIGTERM.
   */
  async start(): Promise<void> {
    try {
      await this.startSteps();
    } catch (err) {
      await this.stop(0).catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'cleanup after a failed start failed'));
      throw err;
    }
  }

  private async startSteps(): Promise<void> {
    const { config } = this.desired;
    // DNS first: a uid the rules do not exempt, or a taken port, fails before anything starts (docs/dns.md).
    if (config.dns) this.dns = await DnsService.start(config, this.log.child({ component: 'dns' }));
    const dns = this.dns;
    if (dns) this.metrics.addCollector(() => renderCounters('meshlet_dns_queries_total', 'DNS queries by outcome: answered (route names), forwarded, errors, dropped, loops', 'outcome', outcomes(dns.stats)));
    const gate = this.opts.loaded.gate;
    if (gate) this.metrics.addCollector(() => renderCounters('meshlet_config_updates_refused_total', "Config file updates refused because the pod's policy does not cover them, by reason", 'reason', Object.fromEntries(gate.refused)));
    await this.ads.listen();
    await this.handSocketToProxy();
    await this.writeBootstrap();
    if (!this.opts.noEnvoy) {
      if (!this.opts.envoyPath) throw new Error('internal: envoyPath missing');
      await this.checkProxyAccess(this.opts.envoyPath);
      const s = new EnvoySupervisor({
        envoyPath: this.opts.envoyPath,
        bootstrapPath: config.proxy.bootstrapPath,
        uid: config.proxy.uid,
        gid: config.proxy.gid,
        adminUrl: this.adminUrl,
        logger: this.log.child({ component: 'supervisor' }),
        ...(this.opts.envoyLogLevel ? { logLevel: this.opts.envoyLogLevel } : {}),
        ...(this.opts.envoyArgs ? { extraArgs: this.opts.envoyArgs } : {}),
      });
      s.on('start', (_pid, restarts) => {
        if (restarts > 0) this.metrics.envoyRestarts.inc();
      });
      s.start();
      this.supervisor = s;
    }
    this.debug = await startDebugServer(config.debug, {
      ready: () => this.ready(),
      xds: () => this.xdsView(),
      metrics: this.metrics,
      ...(this.opts.envoyConfigDump ? { envoyConfigDump: () => this.envoyConfigDump() } : {}),
    });
    await this.startWatchers();
    const trust = this.opts.loaded.gate?.trust() ?? this.opts.loaded.trust;
    this.log.info({ source: this.opts.loaded.source, trust: trust.mode, configSha256: trust.sha256, configVersion: trust.version, socket: config.proxy.xdsSocket, debug: `${config.debug.ip}:${config.debug.port}` }, 'meshlet serving');
  }

  get adminUrl(): string {
    const a = this.desired.config.proxy.admin;
    return `http://${a.ip.includes(':') ? `[${a.ip}]` : a.ip}:${a.port}`;
  }

  get envoyPid(): number | undefined {
    return this.supervisor?.pid;
  }

  /**
   * The socket is 0600 and must belong to the uid Envoy runs as. Its
   * directory, when meshlet created it (root-owned, 0700), is handed to that
   * uid too, so only Envoy can reach the socket and read the bootstrap.
   */
  private async handSocketToProxy(): Promise<void> {
    const { uid, gid, xdsSocket, bootstrapPath } = this.desired.config.proxy;
    if (process.getuid?.() !== 0) return;
    await chown(xdsSocket, uid, gid);
    for (const dir of new Set([path.dirname(xdsSocket), path.dirname(bootstrapPath)])) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const st = await stat(dir);
      if (st.uid === 0 && (st.mode & 0o777) === 0o700) await chown(dir, uid, gid);
    }
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

  private async writeBootstrap(): Promise<void> {
    const { config } = this.desired;
    const text = renderBootstrap(buildBootstrap(config, { nodeId: this.opts.nodeId ?? `meshlet~${hostname()}`, cluster: 'meshlet', delta: this.opts.delta ?? true }));
    await mkdir(path.dirname(config.proxy.bootstrapPath), { recursive: true });
    const tmp = `${config.proxy.bootstrapPath}.tmp`;
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, config.proxy.bootstrapPath);
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
      adminUrl: this.adminUrl,
      ...(this.opts.skipIptablesCheck ? {} : { rules: () => this.rulesCached(config) }),
    });
  }

  private rulesOk: { config: MeshConfig; at: number } | undefined;

  /**
   * Reading the rules spawns iptables-save per family; a probe polling /ready
   * should not do that many times a second. Only a positive answer is kept,
   * and only briefly, so a missing rule still shows within seconds.
   */
  private async rulesCached(config: MeshConfig): Promise<{ ok: boolean; missing: string[] }> {
    if (this.rulesOk?.config === config && Date.now() - this.rulesOk.at < 5_000) return { ok: true, missing: [] };
    const r = await rulesReady(config);
    this.rulesOk = r.ok ? { config, at: Date.now() } : undefined;
    return r;
  }

  xdsView(): unknown {
    const snap = this.desired.snapshot;
    const types = Object.fromEntries(
      Object.values(snap.types).map((t) => [t.typeUrl, { version: t.version, resources: [...t.resources.values()].map((r) => r.json) }]),
    );
    const trust = this.opts.loaded.gate?.trust() ?? this.opts.loaded.trust;
    return redact({ source: this.opts.loaded.source, trust, types, envoys: this.ads.status().envoys, reloads: this.reloads });
  }

  private async envoyConfigDump(): Promise<unknown> {
    const res = await fetch(`${this.adminUrl}/config_dump`, { signal: AbortSignal.timeout(2_000) });
    return redact(await res.json());
  }

  async stop(drainMs = 5_000): Promise<void> {
    for (const w of this.watchers) w.close();
    await this.supervisor?.stop(drainMs);
    await new Promise<void>((r) => (this.debug ? this.debug.close(() => r()) : r()));
    await this.ads.close();
    await this.dns?.close();
  }
}

function outcomes(s: DnsService['stats']): Record<string, number> {
  return { answered: s.answered, forwarded: s.forwarded, errors: s.errors, dropped: s.dropped, loops: s.loops };
}

function short(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
}

function versions(s: Snapshot): Map<string, string> {
  return new Map([TYPE_URL.cluster, TYPE_URL.listener, TYPE_URL.secret].map((t) => [t, typeOf(s, t).version]));
}
