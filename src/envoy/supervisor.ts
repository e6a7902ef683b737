// Runs Envoy as a child process under the proxy uid, restarts it with backoff
// when it dies, and drains it gracefully on stop. Envoy gets a parent-death
// signal, so it never outlives meshlet.
import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../log.js';
import { adminGet, type AdminGetOptions, type AdminResponse } from './admin.js';
import { exitOf } from './proc.js';
const { spawn } = process.getBuiltinModule('node:child_process');
const { EventEmitter } = process.getBuiltinModule('node:events');

/**
 * Everything the supervisor takes from the system: starting a process, its
 * own uid, Envoy's admin and the clock. The default is the real system; a
 * test substitutes it only for a failure that cannot be produced for real.
 */
export interface Spawner {
  /** Starts argv[0] with the rest as arguments; the child's stdout and stderr are meshlet's. */
  spawn(argv: readonly string[]): ChildProcess;
  /** meshlet's uid: it decides whether setpriv switches to the proxy uid. */
  uid(): number;
  admin(socket: string, path: string, opts: AdminGetOptions): Promise<AdminResponse>;
  now(): number;
}

export const systemSpawner: Spawner = {
  // TZ=UTC: Envoy's JSON log lines carry local time, which then is UTC like meshlet's.
  spawn: ([cmd = '', ...args]) => spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, TZ: 'UTC' } }),
  uid: () => process.getuid?.() ?? 0,
  admin: adminGet,
  now: Date.now,
};

export interface SupervisorOptions {
  envoyPath: string;
  bootstrapPath: string;
  /** Run Envoy as this uid/gid. Needs root; when meshlet already runs as uid, Envoy is spawned directly. */
  uid: number;
  gid: number;
  /** Envoy's admin Unix socket (see admin.ts). */
  adminSocket: string;
  logLevel?: string;
  /** Extra Envoy arguments, e.g. --concurrency. */
  extraArgs?: string[];
  backoff?: { initialMs: number; maxMs: number; resetAfterMs: number };
  logger: Logger;
  spawner?: Spawner;
}

export interface SupervisorEvents {
  start: [pid: number, restarts: number];
  exit: [code: number | null, signal: NodeJS.Signals | null];
}

/**
 * Envoy's own log lines as JSON objects, so the container's log is one JSON
 * line per entry whoever wrote it: meshlet's own lines carry "app":"meshlet"
 * and a numeric level, Envoy's carry "app":"envoy" and Envoy's level name.
 * %j is the message JSON-escaped; the time is UTC because Envoy is started
 * with TZ=UTC.
 */
export const ENVOY_LOG_FORMAT = '{"time":"%Y-%m-%dT%T.%eZ","level":"%l","app":"envoy","component":"envoy","logger":"%n","thread":%t,"msg":"%j"}';

/**
 * The argv that starts Envoy as the proxy uid with only CAP_NET_ADMIN (for
 * IP_TRANSPARENT listeners and original-destination sockets), through setpriv.
 * setpriv also sets the parent-death signal: SIGKILL to Envoy when meshlet
 * dies, even by SIGKILL, so no Envoy keeps serving a config nobody updates.
 * setpriv applies it after the uid change (which would clear it) and it
 * survives the exec. The kernel does clear it when the exec gains
 * privileges (an Envoy binary with file capabilities, as in the image where
 * meshlet runs as the proxy uid); there meshlet is the container's PID 1, and
 * the container ends with it.
 */
export function envoyCommand(
  opts: Pick<SupervisorOptions, 'envoyPath' | 'bootstrapPath' | 'uid' | 'gid' | 'logLevel' | 'extraArgs'>,
  currentUid: number,
): string[] {
  const envoy = [
    opts.envoyPath,
    '-c',
    opts.bootstrapPath,
    '--log-level',
    opts.logLevel ?? 'warning',
    '--log-format',
    ENVOY_LOG_FORMAT,
    // Several Envoys may share a host in tests; meshlet never hot-restarts.
    '--disable-hot-restart',
    // Access-log lines reach stdout within a second, not Envoy's default ten.
    '--file-flush-interval-msec',
    '1000',
    ...(opts.extraArgs ?? []),
  ];
  if (currentUid === opts.uid) return ['setpriv', '--pdeathsig=SIGKILL', '--', ...envoy];
  if (currentUid !== 0) throw new Error(`cannot start Envoy as uid ${opts.uid}: meshlet runs as uid ${currentUid}; run meshlet as root or as uid ${opts.uid}`);
  return ['setpriv', ...asProxyUid(opts.uid, opts.gid), ...envoy];
}

/**
 * setpriv's arguments (up to and including `--`) that make the program after
 * them run as Envoy runs: the proxy uid and gid, no supplementary groups,
 * CAP_NET_ADMIN and no other capability, and SIGKILL when meshlet dies.
 */
export function asProxyUid(uid: number, gid: number): string[] {
  return [
    `--reuid=${uid}`,
    `--regid=${gid}`,
    '--clear-groups',
    '--inh-caps=-all,+net_admin',
    '--ambient-caps=-all,+net_admin',
    '--bounding-set=-all,+net_admin',
    '--pdeathsig=SIGKILL',
    '--',
  ];
}

/** How often the supervisor looks in /proc for the exit of an Envoy it adopted (early.ts), and how often while stopping it. */
const ADOPTED_POLL_MS = 500;
const ADOPTED_STOP_POLL_MS = 10;

/** An adopted Envoy: node did not spawn it, so no ChildProcess tells of its exit; /proc does. */
interface Adopted {
  pid: number;
  timer: NodeJS.Timeout | undefined;
  ended: Promise<void>;
  end: () => void;
  done: boolean;
}

export class EnvoySupervisor extends EventEmitter<SupervisorEvents> {
  private child: ChildProcess | undefined;
  private adopted: Adopted | undefined;
  private restarts = 0;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private delayMs: number;
  private readonly backoff: NonNullable<SupervisorOptions['backoff']>;
  private readonly sys: Spawner;

  constructor(private readonly opts: SupervisorOptions) {
    super();
    this.sys = opts.spawner ?? systemSpawner;
    this.backoff = opts.backoff ?? { initialMs: 200, maxMs: 10_000, resetAfterMs: 30_000 };
    this.delayMs = this.backoff.initialMs;
  }

  /** What the supervisor starts Envoy with (envoyCommand's input). */
  get options(): Pick<SupervisorOptions, 'envoyPath' | 'bootstrapPath' | 'uid' | 'gid' | 'logLevel' | 'extraArgs'> {
    return this.opts;
  }

  get pid(): number | undefined {
    return this.child?.pid ?? this.adopted?.pid;
  }

  get restartCount(): number {
    return this.restarts;
  }

  start(): void {
    const argv = envoyCommand(this.opts, this.sys.uid());
    const cmd = argv[0];
    const child = this.sys.spawn(argv);
    this.child = child;
    this.startedAt = this.sys.now();
    child.once('spawn', () => {
      this.opts.logger.info({ pid: child.pid, restarts: this.restarts }, 'envoy started');
      this.emit('start', child.pid ?? 0, this.restarts);
    });
    // 'error' also fires when a signal cannot be delivered (EPERM when Envoy runs
    // as another uid and meshlet lacks CAP_KILL); never let it crash meshlet.
    child.on('error', (err) => this.opts.logger.error({ err: err.message, cmd }, 'envoy process error'));
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
  }

  /**
   * Supervises an Envoy this process did not spawn: the launcher's (early.ts),
   * which node is the parent of. It is restarted, drained and stopped as a
   * spawned one is; its exit is read from /proc, every ADOPTED_POLL_MS (a restart waits 200 ms or more anyway).
   */
  adopt(pid: number): void {
    let end = (): void => undefined;
    const ended = new Promise<void>((resolve) => (end = resolve));
    const a: Adopted = { pid, timer: undefined, ended, end, done: false };
    this.adopted = a;
    this.startedAt = this.sys.now();
    this.opts.logger.info({ pid, restarts: this.restarts, startedBy: 'launcher' }, 'envoy started');
    this.emit('start', pid, this.restarts);
    this.pollAdopted(a, ADOPTED_POLL_MS);
  }

  private pollAdopted(a: Adopted, everyMs: number): void {
    if (a.timer) clearInterval(a.timer);
    a.timer = setInterval(() => {
      const end = exitOf(a.pid);
      if (!end) return;
      clearInterval(a.timer);
      a.done = true;
      a.end();
      if (this.adopted !== a) return;
      this.adopted = undefined;
      this.exited(end.code, end.signal);
    }, everyMs);
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    this.exited(code, signal);
  }

  private exited(code: number | null, signal: NodeJS.Signals | null): void {
    this.emit('exit', code, signal);
    if (this.stopping) return;
    if (this.sys.now() - this.startedAt > this.backoff.resetAfterMs) this.delayMs = this.backoff.initialMs;
    this.opts.logger.warn({ code, signal, restartInMs: this.delayMs }, 'envoy exited; restarting');
    this.timer = setTimeout(() => {
      this.restarts += 1;
      this.start();
    }, this.delayMs);
    this.delayMs = Math.min(this.delayMs * 2, this.backoff.maxMs);
  }

  /**
   * Graceful stop: ask Envoy to drain its listeners (new connections are
   * refused by the drain, existing ones may finish), wait up to drainMs, then
   * SIGTERM, and SIGKILL after killMs.
   */
  async stop(drainMs = 5_000, killMs = 5_000): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    const running = this.running();
    if (!running) return;
    const { exited, kill } = running;
    if (drainMs > 0) {
      try {
        await this.sys.admin(this.opts.adminSocket, '/drain_listeners?graceful', { method: 'POST', timeoutMs: 1_000, ownerUid: this.opts.uid });
        await Promise.race([exited, this.waitNoConnections(drainMs)]);
      } catch (err) {
        this.opts.logger.warn({ err: (err as Error).message }, 'envoy drain request failed; stopping it anyway');
      }
    }
    kill('SIGTERM');
    const killer = setTimeout(() => kill('SIGKILL'), killMs);
    await exited;
    clearTimeout(killer);
  }

  /** The Envoy that runs now, spawned or adopted: how to signal it and when it has exited. */
  private running(): { exited: Promise<void>; kill: (signal: NodeJS.Signals) => void } | undefined {
    const child = this.child;
    if (child) {
      if (child.exitCode !== null) return undefined;
      return { exited: new Promise<void>((resolve) => child.once('exit', () => resolve())), kill: (sig) => child.kill(sig) };
    }
    const a = this.adopted;
    if (!a || a.done) return undefined;
    this.pollAdopted(a, ADOPTED_STOP_POLL_MS);
    const kill = (sig: NodeJS.Signals): void => {
      try {
        // Safe by pid: a child that node has not reaped keeps its pid, even once it has exited.
        process.kill(a.pid, sig);
      } catch (err) {
        this.opts.logger.error({ err: (err as Error).message, pid: a.pid }, 'envoy process error');
      }
    };
    return { exited: a.ended, kill };
  }

  /** Resolves when Envoy reports no active downstream connections, or after ms. */
  private async waitNoConnections(ms: number): Promise<void> {
    const deadline = this.sys.now() + ms;
    while (this.sys.now() < deadline) {
      try {
        const res = await this.sys.admin(this.opts.adminSocket, '/stats?filter=downstream_cx_active$&format=json', { timeoutMs: 500, ownerUid: this.opts.uid });
        const body = JSON.parse(res.body) as { stats?: { name: string; value?: number }[] };
        const active = (body.stats ?? []).filter((s) => s.name.startsWith('listener.') && !s.name.includes('admin')).reduce((n, s) => n + (s.value ?? 0), 0);
        if (active === 0) return;
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
