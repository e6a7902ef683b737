// `meshlet run`: the wiring. Order matters (ARCHITECTURE.md, startup order):
// config and certs are checked first, then the xDS socket is bound with the
// snapshot already in place, then Envoy starts, then the watchers. Each
// concern lives in its own module; this file only connects them.
import { hostname } from 'node:os';
import type { Server } from 'node:http';
import type { Logger } from '../log.js';
import type { LoadedConfig } from '../config/load.js';
import { adminSocketPath } from '../config/constants.js';
import { loadCerts } from '../certs/index.js';
import { AdsServer } from '../xds/server.js';
import { TYPE_URL } from '../xds/protos.js';
import { typeOf } from '../xds/snapshot.js';
import { EnvoySupervisor } from '../envoy/supervisor.js';
import { adminGet, adminReachProblem, type AdminResponse } from '../envoy/admin.js';
import { endStaleEnvoys } from '../envoy/stale.js';
import { Metrics } from '../debug/metrics.js';
import { startDebugServer } from '../debug/server.js';
import { startPublicServer } from '../debug/public.js';
import { probeCounter, probeHost, startProbeServer } from '../debug/probes.js';
import { mappedPorts } from '../xds/builders/listeners-inbound.js';
import type { FileWatcher, WatchOptions } from '../reload/watcher.js';
import { execFileRunner } from '../iptables/runner.js';
import type { IptablesDeps } from '../iptables/deps.js';
import { DnsService } from '../dns/index.js';
import { rulesReady } from './rules-check.js';
import { prepareRuntimeDirs, writeBootstrapFile } from './runtime-dir.js';
import { checkProxyAccess, handSocketToProxy } from './proxy-access.js';
import { readiness } from './readiness.js';
import { snapshotFor, type Desired, type Outcome } from './reload.js';
import { RulesCache } from './rules-cache.js';
import { AckLatency, versions } from './ack-latency.js';
import { ReloadLog, watchSources, type ReloadKind } from './watch.js';
import { currentTrust, dnsCounters, envoyConfigDump, refusedCounters, xdsView } from './views.js';

export { RULES_OK_TTL_MS } from './rules-cache.js';

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
  watch?: WatchOptions;
  /** How /ready reads the rules, and how the proxy uid's access is checked (setpriv). Default: the real commands, backend auto. */
  iptables?: IptablesDeps;
  /** meshlet's own uid (root hands the socket over and checks the proxy uid's access). */
  currentUid?: number;
  /** The clock for reload times and change → ACK latency. */
  now?: () => number;
}

export class Meshlet {
  readonly metrics = new Metrics();
  readonly ads: AdsServer;
  private desired: Desired;
  private supervisor: EnvoySupervisor | undefined;
  private servers: Server[] = [];
  private dns: DnsService | undefined;
  private watchers: FileWatcher[] = [];
  private readonly reloads = new ReloadLog();
  private readonly ackLatency: AckLatency;
  private readonly rules: RulesCache;
  private readonly log: Logger;
  private readonly iptables: IptablesDeps;
  private readonly uid: number;
  private readonly now: () => number;
  private stopping = false;

  constructor(private readonly opts: RunOptions) {
    this.log = opts.logger;
    this.iptables = opts.iptables ?? { runner: execFileRunner };
    this.uid = opts.currentUid ?? process.getuid?.() ?? 0;
    this.now = opts.now ?? Date.now;
    const { config } = opts.loaded;
    const certs = loadCerts(config.certs);
    this.desired = { config, certs, snapshot: snapshotFor(config, certs) };
    this.ackLatency = new AckLatency((s) => this.metrics.changeToAck.observe(s), this.now);
    this.rules = new RulesCache((c) => rulesReady(c, this.iptables), this.log, this.now);
    this.ads = new AdsServer({ socketPath: config.proxy.xdsSocket, logger: opts.logger.child({ component: 'xds' }), snapshot: this.desired.snapshot });
    this.ads.onResponse((e) => this.metrics.pushes.inc({ type: short(e.typeUrl) }));
    this.ads.onAck((e) => {
      this.metrics.acks.inc({ type: short(e.typeUrl) });
      this.ackLatency.settle(this.ads.status().envoys);
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
    // Before anything binds: without admin, readiness and draining cannot work.
    const reach = this.opts.noEnvoy ? undefined : adminReachProblem(config.proxy.uid);
    if (reach) throw new Error(reach);
    // DNS first: a uid the rules do not exempt, or a taken port, fails before anything starts (docs/dns.md).
    if (config.dns) this.dns = await DnsService.start(config, this.log.child({ component: 'dns' }));
    if (this.dns) this.metrics.addCollector(dnsCounters(this.dns));
    if (this.opts.loaded.gate) this.metrics.addCollector(refusedCounters(this.opts.loaded.gate));
    prepareRuntimeDirs(config.proxy);
    await this.ads.listen();
    await handSocketToProxy(config.proxy, this.uid);
    writeBootstrapFile(config, { nodeId: this.opts.nodeId ?? `meshlet~${hostname()}`, delta: this.opts.delta ?? true });
    if (!this.opts.noEnvoy) await this.startEnvoy();
    this.servers.push(
      await startDebugServer(config.debug, {
        ready: () => this.ready(),
        xds: () => this.xdsView(),
        metrics: this.metrics,
        ...(this.opts.envoyConfigDump ? { envoyConfigDump: () => envoyConfigDump((p, o) => this.admin(p, o)) } : {}),
      }),
    );
    if (config.metrics) {
      this.servers.push(await startPublicServer(config.metrics.port, { adminGet: (p) => this.admin(p), metrics: this.metrics, ready: () => this.ready() }));
    }
    if (config.probes) {
      const counter = probeCounter();
      this.metrics.addCollector(() => counter.render());
      this.servers.push(
        await startProbeServer(config.probes.port, {
          checks: () => this.desired.config.probes?.checks ?? [],
          host: (p) => probeHost(new Set(this.desired.config.ingress.mode === 'mapped' ? mappedPorts(this.desired.config).map((m) => m.port) : []), p),
          counter,
        }),
      );
    }
    this.watchers = await watchSources({
      loaded: this.opts.loaded,
      current: () => this.desired,
      onOutcome: (kind, at, outcome) => this.record(kind, at, outcome),
      log: this.log,
      ...(this.opts.watch ? { watch: this.opts.watch } : {}),
    });
    const trust = currentTrust(this.opts.loaded);
    this.log.info(
      {
        source: this.opts.loaded.source,
        trust: trust.mode,
        configSha256: trust.sha256,
        configVersion: trust.version,
        socket: config.proxy.xdsSocket,
        debug: `${config.debug.ip}:${config.debug.port}`,
      },
      'meshlet serving',
    );
  }

  private async startEnvoy(): Promise<void> {
    const { proxy } = this.desired.config;
    if (!this.opts.envoyPath) throw new Error('internal: envoyPath missing');
    const logger = this.log.child({ component: 'supervisor' });
    // Before our Envoy starts: an Envoy left by an earlier meshlet would
    // share our listeners' ports (SO_REUSEPORT) and serve its old config.
    await endStaleEnvoys({ bootstrapPath: proxy.bootstrapPath, uid: proxy.uid, gid: proxy.gid, logger });
    // The access checks spawn processes; they run while Envoy boots instead
    // of before it, and a failure still fails the start.
    const access = checkProxyAccess(proxy, this.opts.envoyPath, this.iptables.runner, this.uid);
    const s = new EnvoySupervisor({
      envoyPath: this.opts.envoyPath,
      bootstrapPath: proxy.bootstrapPath,
      uid: proxy.uid,
      gid: proxy.gid,
      adminSocket: this.adminSocket,
      logger,
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

  /** Applies a reload outcome, or records why it was refused. */
  private record(kind: ReloadKind, at: number, outcome: Outcome): void {
    if (outcome.ok) {
      this.apply(outcome.desired, at);
      this.metrics.reloads.inc({ kind });
      this.log.info({ kind, versions: Object.fromEntries(versions(outcome.desired.snapshot)) }, 'reload applied');
    } else {
      this.metrics.reloadErrors.inc({ kind });
      this.log.error({ kind, error: outcome.error }, 'reload refused; the last good config keeps serving');
    }
    this.reloads.add(kind, at, outcome);
  }

  /** Test seam and reload path: serve a new desired state. */
  apply(desired: Desired, changedAt = this.now()): void {
    this.ackLatency.changed(this.desired.snapshot, desired.snapshot, changedAt);
    this.desired = desired;
    this.dns?.update(desired.config);
    this.ads.setSnapshot(desired.snapshot);
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
      ...(this.opts.skipIptablesCheck ? {} : { rules: () => this.rules.get(config) }),
    });
  }

  xdsView(): unknown {
    return xdsView({
      loaded: this.opts.loaded,
      config: this.desired.config,
      snapshot: this.desired.snapshot,
      envoys: this.ads.status().envoys,
      reloads: this.reloads.list(),
    });
  }

  async stop(drainMs = 5_000): Promise<void> {
    this.stopping = true;
    for (const w of this.watchers) w.close();
    await this.supervisor?.stop(drainMs);
    for (const server of this.servers) await new Promise<void>((r) => server.close(() => r()));
    await this.ads.close();
    await this.dns?.close();
  }
}

function short(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
}
