// `meshlet run`: the wiring. Order matters (ARCHITECTURE.md, startup order):
// the config (validated by the caller) first and the certificate files read,
// then DNS when configured; then the bootstrap is written and Envoy spawned,
// as the bootstrap needs only the config, and the xDS socket bound. Only then,
// while Envoy boots, does meshlet check the certificates (node:crypto loads
// there, not before the spawn), load the resource builders and build and
// install the snapshot (an ADS stream that opens first waits in the xDS server
// until then) and load the rest (after-spawn.ts): the debug, metrics and probe
// servers and the watchers. The start is over once Envoy's ADS stream has
// opened, which proves the proxy uid's access (proxyAccessProven). A failure
// at any step stops whatever already started, Envoy included. Each concern
// lives in its own module; this file only connects them.
import type { Server } from 'node:http';
import type { Logger } from '../log.js';
import type { LoadedConfig } from '../config/load.js';
import { adminSocketPath } from '../config/constants.js';
import { checkReadCerts, readCertFiles } from '../certs/index.js';
import type { CertState } from '../certs/types.js';
import { AdsServer } from '../xds/server.js';
import { TYPE_URL } from '../xds/protos.js';
import { typeOf } from '../xds/snapshot.js';
import { EnvoySupervisor, envoyCommand } from '../envoy/supervisor.js';
import { BootstrapHandoff, endEarlyEnvoy, notAdoptable, type EarlyEnvoy } from '../envoy/early.js';
import { adminGet, adminReachProblem, type AdminResponse } from '../envoy/admin.js';
import { endStaleEnvoys } from '../envoy/stale.js';
import { Metrics } from '../debug/metrics.js';
import type { ReadyReport } from '../debug/server.js';
import type { FileWatcher, WatchOptions } from '../reload/watcher.js';
import { execFileRunner } from '../iptables/runner.js';
import type { IptablesDeps } from '../iptables/deps.js';
import type { DnsService } from '../dns/index.js';
import { prepareRuntimeDirs, writeBootstrapFile } from './runtime-dir.js';
import { checkProxyAccess, handSocketToProxy } from './proxy-access.js';
import { ackedCheck, ListenersCache, readiness } from './readiness.js';
import type { Desired, Outcome } from './reload.js';
import { RulesCache } from './rules-cache.js';
import { monotonicMs } from './kept-answer.js';
import { AckLatency, versions } from './ack-latency.js';
import type { ReloadKind, ReloadLog } from './watch.js';
import type * as AfterSpawn from './after-spawn.js';
const { hostname } = process.getBuiltinModule('node:os');

export { RULES_OK_TTL_MS } from './rules-cache.js';

/**
 * How long a start waits for Envoy's ADS stream before it checks the proxy
 * uid's access itself. Envoy connects tens of milliseconds after its spawn;
 * one that has not connected after this long, and has not exited either,
 * may be retrying a socket it cannot reach.
 */
export const ACCESS_CHECK_AFTER_MS = 2_000;

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
  /** How long the start waits for Envoy's ADS stream before it checks the proxy uid's access itself (ACCESS_CHECK_AFTER_MS). */
  accessCheckAfterMs?: number;
  /** The Envoy the `meshlet` launcher started before node, waiting for its bootstrap (src/envoy/early.ts). */
  early?: EarlyEnvoy;
}

export class Meshlet {
  readonly metrics = new Metrics();
  readonly ads: AdsServer;
  /** Undefined until the first snapshot is built, after Envoy was spawned. */
  private desired: Desired | undefined;
  /** The modules loaded after the spawn. */
  private late: typeof AfterSpawn | undefined;
  private supervisor: EnvoySupervisor | undefined;
  private servers: Server[] = [];
  private dns: DnsService | undefined;
  private watchers: FileWatcher[] = [];
  private reloads: ReloadLog | undefined;
  private readonly ackLatency: AckLatency;
  private readonly rules: RulesCache;
  private readonly listenersCache: ListenersCache;
  /** Set once warmReadiness has started its one check. */
  private warmed = false;
  private readonly log: Logger;
  private readonly iptables: IptablesDeps;
  private readonly uid: number;
  private readonly now: () => number;
  private stopping = false;
  /** Ends proxyAccessProven's wait (stop() during a start). */
  private endAccessWait: (() => void) | undefined;
  /** The launcher's Envoy until startEnvoy adopts or ends it. */
  private early: EarlyEnvoy | undefined;
  /** The adopted Envoy's bootstrap on its way through the FIFO (BootstrapHandoff); poked between the start's steps. */
  private handoff: BootstrapHandoff | undefined;

  constructor(private readonly opts: RunOptions) {
    this.log = opts.logger;
    this.iptables = opts.iptables ?? { runner: execFileRunner };
    this.uid = opts.currentUid ?? process.getuid?.() ?? 0;
    this.now = opts.now ?? Date.now;
    this.early = opts.early;
    this.ackLatency = new AckLatency((s) => this.metrics.changeToAck.observe(s), this.now);
    // Reading the rules needs most of the iptables modules: loaded on the first /ready, not before Envoy starts.
    // The kept /ready answers age on a clock that only goes forward (the test clock when one is given).
    const kept = opts.now ?? monotonicMs;
    this.rules = new RulesCache(async (c) => (await import('./rules-check.js')).rulesReady(c, this.iptables), this.log, kept);
    // No snapshot yet: Envoy's streams wait in the server until start() installs the first one.
    this.ads = new AdsServer({ socketPath: opts.loaded.config.proxy.xdsSocket, logger: opts.logger.child({ component: 'xds' }) });
    this.ads.onResponse((e) => this.metrics.pushes.inc({ type: short(e.typeUrl) }));
    this.listenersCache = new ListenersCache((p) => this.admin(p), kept);
    this.ads.onAck((e) => {
      this.metrics.acks.inc({ type: short(e.typeUrl) });
      this.ackLatency.settle(this.ads.sync());
      this.warmReadiness();
    });
    this.ads.onNack((e) => this.metrics.nacks.inc({ type: short(e.typeUrl) }));
  }

  get config(): Desired['config'] {
    return this.desired?.config ?? this.opts.loaded.config;
  }

  /**
   * Starts everything, in order. When a step fails, whatever already started
   * (the bound socket, DNS, Envoy, the debug server, watchers) is stopped
   * before the error propagates: those handles would otherwise keep the
   * process alive, serving a half-started sidecar until SIGTERM.
   */
  async start(): Promise<void> {
    // Before anything starts: a certificate file that is missing or cannot be read stops here, with the file named, and
    // no Envoy ever runs. What the files hold is checked while Envoy boots (startSteps).
    const certs = readCertFiles(this.opts.loaded.config.certs);
    try {
      await this.startSteps(certs);
    } catch (err) {
      await this.stop(0).catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'cleanup after a failed start failed'));
      throw err;
    }
  }

  private async startSteps(certs: CertState): Promise<void> {
    const { config } = this.opts.loaded;
    // Before anything binds: without admin, readiness and draining cannot work.
    const reach = this.opts.noEnvoy ? undefined : adminReachProblem(config.proxy.uid);
    if (reach) throw new Error(reach);
    // DNS first: a uid the rules do not exempt, or a taken port, fails before anything starts (docs/dns.md).
    if (config.dns) {
      const { DnsService } = await import('../dns/index.js');
      this.dns = await DnsService.start(config, this.log.child({ component: 'dns' }));
    }
    prepareRuntimeDirs(config.proxy);
    // A socket left by a dead meshlet goes now; one still in use stops the start before any Envoy runs.
    await this.ads.prepare();
    const bootstrap = writeBootstrapFile(config, { nodeId: this.opts.nodeId ?? `meshlet~${hostname()}`, delta: this.opts.delta ?? true });
    if (!this.opts.noEnvoy) await this.startEnvoy(bootstrap);
    this.endEarly('meshlet runs without Envoy (--no-envoy)');
    // Bound after the spawn, which it does not need: Envoy first connects tens of ms later, once its own start is
    // done, and the bootstrap's retry back-off (ADS_RETRY_BACK_OFF) would cover a bind that came later still.
    await this.ads.bind();
    handSocketToProxy(config.proxy, this.uid);
    this.handoff?.poke();
    // Waits for Envoy's ADS stream, which proves the proxy uid's access; awaited last, so that nothing waits on it.
    const access = this.opts.noEnvoy ? undefined : this.proxyAccessProven();
    access?.catch(() => undefined);
    // Envoy boots now (tens of ms until its ADS stream opens). The certificates' checks and the snapshot first, as
    // that is what Envoy waits for. A certificate problem stops that Envoy (start() cleans up) before it has any
    // listener, and fails the start with every problem named.
    const { certs: files } = config;
    checkReadCerts(certs, files);
    this.log.info({ ca: files.ca, certChain: files.certChain }, 'certificates checked');
    this.handoff?.poke();
    await this.installFirstSnapshot(certs);
    this.handoff?.poke();
    const late = await import('./after-spawn.js');
    this.late = late;
    if (this.dns) this.metrics.addCollector(late.dnsCounters(this.dns));
    if (this.opts.loaded.gate) this.metrics.addCollector(late.refusedCounters(this.opts.loaded.gate));
    this.servers.push(
      await late.startDebugServer(config.debug, {
        ready: () => this.ready(),
        xds: () => this.xdsView(),
        metrics: this.metrics,
        ...(this.opts.envoyConfigDump ? { envoyConfigDump: () => late.envoyConfigDump((p, o) => this.admin(p, o)) } : {}),
      }),
    );
    if (config.metrics) {
      this.servers.push(
        await late.startPublicServer(config.metrics.port, { adminGet: (p, o) => this.admin(p, o), metrics: this.metrics, ready: () => this.ready() }),
      );
    }
    if (config.probes) {
      const counter = late.probeCounter();
      this.metrics.addCollector(() => counter.render());
      this.servers.push(
        await late.startProbeServer(config.probes.port, {
          checks: () => this.config.probes?.checks ?? [],
          host: (p) => late.probeHost(new Set(this.config.ingress.mode === 'mapped' ? late.mappedPorts(this.config).map((m) => m.port) : []), p),
          counter,
        }),
      );
    }
    this.reloads = new late.ReloadLog();
    this.watchers = await late.watchSources({
      loaded: this.opts.loaded,
      current: () => this.served(),
      onOutcome: (kind, at, outcome) => this.record(kind, at, outcome),
      log: this.log,
      ...(this.opts.watch ? { watch: this.opts.watch } : {}),
    });
    // Envoy has reached the socket, or the check as the proxy uid failed: that stops this Envoy and fails the start
    // with the fix named.
    await access;
    const trust = late.currentTrust(this.opts.loaded);
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

  /** Loads the resource builders, then builds and serves the first snapshot. */
  private async installFirstSnapshot(certs: CertState): Promise<void> {
    const { snapshotFor } = await import('./snapshot-for.js');
    const { config } = this.opts.loaded;
    // process.hrtime, not performance.now(): the global \`performance\` loads perf_hooks (about 0.7 MiB resident for one timing).
    const started = process.hrtime.bigint();
    let snapshot: Desired['snapshot'];
    try {
      snapshot = snapshotFor(config, certs);
    } catch (err) {
      throw new Error(`building the xDS snapshot failed: ${(err as Error).message}`, { cause: err });
    }
    const buildMs = Number((process.hrtime.bigint() - started) / 100_000n) / 10;
    this.desired = { config, certs, snapshot };
    this.ads.setSnapshot(snapshot);
    this.log.info({ buildMs, versions: Object.fromEntries(versions(snapshot)) }, 'xDS snapshot ready');
  }

  /**
   * Resolves once the proxy uid is shown to run Envoy, read the bootstrap and
   * reach the xDS socket. Envoy's ADS stream shows all three, so a start that
   * goes well spawns nothing to find out: checking as that uid is a process
   * to spawn, a fork of meshlet, and it would take CPU from Envoy's own start.
   * Only when Envoy exits before its stream opens, or no stream has come
   * within ACCESS_CHECK_AFTER_MS, is the access checked as that uid
   * (checkProxyAccess), to name what it cannot reach; a check that passes
   * then lets the start go on (Envoy exited for another reason, which its
   * log says, and the supervisor restarts it; or it is only slow).
   */
  private proxyAccessProven(): Promise<void> {
    const { supervisor, opts } = this;
    const envoyPath = opts.envoyPath;
    if (!supervisor || !envoyPath) throw new Error('internal: Envoy not started');
    return new Promise<void>((resolve, reject) => {
      const offStream = this.ads.onStream(() => settle());
      const onExit = (): void => check();
      const settle = (err?: Error): void => {
        clearTimeout(timer);
        offStream();
        supervisor.off('exit', onExit);
        this.endAccessWait = undefined;
        if (err) reject(err);
        else resolve();
      };
      let checking = false;
      const check = (): void => {
        if (checking || this.stopping) return;
        checking = true;
        checkProxyAccess(opts.loaded.config.proxy, envoyPath, this.iptables.runner, this.uid).then(
          () => settle(),
          (err: unknown) => settle(err as Error),
        );
      };
      supervisor.on('exit', onExit);
      // settle() clears it; nothing calls settle() before this line, as streams and exits come from I/O.
      const timer = setTimeout(check, opts.accessCheckAfterMs ?? ACCESS_CHECK_AFTER_MS);
      this.endAccessWait = () => settle(new Error('meshlet stopped before Envoy connected'));
    });
  }

  /** Kills the launcher's Envoy (still waiting for its bootstrap, or left over) when it is not adopted. */
  private endEarly(why: string): void {
    const early = this.early;
    if (!early) return;
    this.early = undefined;
    endEarlyEnvoy(early);
    this.log.info({ pid: early.pid, why }, 'ended the Envoy the launcher started; meshlet starts its own');
  }

  private async startEnvoy(bootstrap: string): Promise<void> {
    const { proxy } = this.opts.loaded.config;
    if (!this.opts.envoyPath) throw new Error('internal: envoyPath missing');
    const logger = this.log.child({ component: 'supervisor' });
    // Before our Envoy starts: an Envoy left by an earlier meshlet would
    // share our listeners' ports (SO_REUSEPORT) and serve its old config.
    await endStaleEnvoys({ bootstrapPath: proxy.bootstrapPath, uid: proxy.uid, gid: proxy.gid, logger });
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
    this.supervisor = s;
    const early = this.early;
    if (early) {
      // Adopted only when it runs exactly what this config would spawn, with the FIFO for the bootstrap file.
      const want = envoyCommand({ ...s.options, bootstrapPath: early.fifo }, this.uid);
      const problem = notAdoptable(early.pid, want, proxy);
      if (problem === undefined) {
        this.early = undefined;
        s.adopt(early.pid);
        // Not awaited: Envoy opens the FIFO once its own start reaches the bootstrap, while meshlet goes on (and pokes
        // the handoff between its steps, startSteps).
        const asked = monotonicMs();
        const handoff = new BootstrapHandoff(early, bootstrap, () => s.pid === early.pid);
        this.handoff = handoff;
        handoff.done
          .finally(() => {
            if (this.handoff === handoff) this.handoff = undefined;
          })
          .then(() => this.log.info({ pid: early.pid, waitedMs: Math.round((monotonicMs() - asked) * 10) / 10 }, 'envoy read its bootstrap'))
          .catch((err: unknown) => {
            this.log.error({ pid: early.pid, err: (err as Error).message }, 'could not give the Envoy the launcher started its bootstrap; restarting it');
            if (s.pid === early.pid) endEarlyEnvoy(early);
          });
        return;
      }
      this.endEarly(problem);
    }
    s.start();
    // The spawn is reported on the next tick ("envoy started"); let that line come before the snapshot work, in the order things happened.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Envoy's admin socket: only root (meshlet) and the proxy uid can open it. */
  get adminSocket(): string {
    return adminSocketPath(this.config.proxy.xdsSocket);
  }

  /** One request to Envoy's admin; refuses a socket the proxy uid does not own. */
  admin(urlPath: string, opts: { method?: 'GET' | 'POST'; timeoutMs?: number; maxBytes?: number } = {}): Promise<AdminResponse> {
    return adminGet(this.adminSocket, urlPath, { timeoutMs: 5_000, ...opts, ownerUid: this.config.proxy.uid });
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
    this.reloads?.add(kind, at, outcome);
  }

  /** Test seam and reload path: serve a new desired state. */
  apply(desired: Desired, changedAt = this.now()): void {
    this.ackLatency.changed(this.served().snapshot, desired.snapshot, changedAt);
    this.desired = desired;
    this.dns?.update(desired.config);
    this.ads.setSnapshot(desired.snapshot);
  }

  /** What is served now; only after start() built the first snapshot. */
  private served(): Desired {
    if (!this.desired) throw new Error('internal: no xDS snapshot built yet');
    return this.desired;
  }

  /**
   * Once, at start: the first time every type is ACKed, ask Envoy's admin
   * about the listeners right away (the answer is kept: ListenersCache), so
   * that the startup probe's next /ready has it instead of asking then. After
   * that only /ready asks, so a reload costs Envoy no admin request unless a
   * probe asks (at 1,000 listeners a config dump is not free).
   */
  private warmReadiness(): void {
    if (this.warmed || this.opts.noEnvoy || !this.desired) return;
    // The full status (every subscribed name, sorted) only once every stream is in sync on what it asked for.
    if (!this.ads.sync().every((e) => Object.values(e.types).every((t) => t.inSync))) return;
    const status = this.ads.status();
    if (!ackedCheck(status).ok) return;
    this.warmed = true;
    const { names, version } = this.servedListeners();
    this.listenersCache.get(status, names, version).catch(() => undefined);
  }

  /** The served snapshot's listener names and LDS version: what Envoy must report active. */
  private servedListeners(): { names: string[]; version: string } {
    const lds = typeOf(this.served().snapshot, TYPE_URL.listener);
    return { names: [...lds.resources.keys()], version: lds.version };
  }

  ready(): Promise<ReadyReport> {
    if (!this.desired) return Promise.resolve({ ready: false, checks: { xdsSnapshot: { ok: false, detail: 'the xDS snapshot is not built yet' } } });
    const config = this.desired.config;
    return readiness({
      status: () => this.ads.status(),
      listeners: () => this.servedListeners(),
      admin: (p) => this.admin(p),
      listenersCache: this.listenersCache,
      stopping: () => this.stopping,
      ...(this.opts.skipIptablesCheck ? {} : { rules: () => this.rules.get(config) }),
    });
  }

  xdsView(): unknown {
    const { late, desired } = this;
    if (!late || !desired) return { starting: 'the xDS snapshot is not built yet', envoys: this.ads.status().envoys };
    return late.xdsView({
      loaded: this.opts.loaded,
      config: desired.config,
      snapshot: desired.snapshot,
      envoys: this.ads.status().envoys,
      reloads: this.reloads?.list() ?? [],
    });
  }

  async stop(drainMs = 5_000): Promise<void> {
    this.stopping = true;
    this.endAccessWait?.();
    this.endEarly('meshlet stopped before it started Envoy');
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
