// `meshlet run` as a real process, and the events its JSON log gives us:
// when the xDS server listened, when Envoy started, when each type was ACKed,
// when a reload was applied. Times are the harness's clock at line arrival.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { alive, Proc, trackPid, untrackPid, type Line } from './procs.js';
import { is200, pollUntil } from './http.js';

export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export const TYPE = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;

/**
 * How the `meshlet` command starts node: the environment assignments and node
 * flags of the built CLI's `#!/usr/bin/env -S …` line, so the bench measures
 * meshlet as it is installed, on this bench's node (process.execPath). And the
 * V8 flags the CLI sets first thing at run time (its V8_FLAGS line): probes
 * that stand in for meshlet get them in MESHLET_V8_FLAGS and set them the same
 * way, first thing, not on the command line, which would cost them node's
 * built-in code cache (src/cli.ts).
 */
export function launcher(script = CLI): { env: Record<string, string>; nodeArgs: string[]; v8Flags: string } {
  const text = readFileSync(script, 'utf8');
  const first = text.split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env(?: -S)? (.*)$/.exec(first);
  if (!m?.[1]) throw new Error(`${script}: no "#!/usr/bin/env" line`);
  const words = m[1].trim().split(/\s+/);
  const env: Record<string, string> = {};
  while (words[0]?.includes('=')) {
    const [k = '', ...v] = (words.shift() ?? '').split('=');
    env[k] = v.join('=');
  }
  if (words.shift() !== 'node') throw new Error(`${script}: the "#!" line does not run node`);
  // const with single quotes in src/cli.ts; var with double quotes once scripts/bundle.mjs has bundled dist/src/cli.js.
  const flags = /^(?:const|var) V8_FLAGS =\s*(['"])([^'"]*)\1;$/m.exec(text);
  if (!flags?.[2]) throw new Error(`${script}: no "const V8_FLAGS = '…';" line`);
  return { env, nodeArgs: words, v8Flags: flags[2] };
}

/** The startup snapshot `npm run build` writes (scripts/snapshot.mjs), which the image's `meshlet` starts from. */
export const BLOB = fileURLToPath(new URL('../../meshlet.blob', import.meta.url));

/** The `meshlet` launcher `npm run build` writes (scripts/install-snapshot.sh, src/envoy/early.ts), as the image installs it. */
export const LAUNCHER = fileURLToPath(new URL('../../meshlet', import.meta.url));

/**
 * Spawn options and argv prefix for `meshlet` as the image starts it: the
 * launcher, which for `meshlet run` starts Envoy before node, then node with
 * the `#!` line's settings and the startup snapshot. It runs the `node` on
 * PATH, so this bench's node goes first there. `launcher: false` starts node
 * from the snapshot directly (Envoy then spawned by node, as before the
 * launcher did it); `snapshot: false` starts dist/src/cli.js itself, as
 * `npx meshlet` does.
 */
export function asMeshlet(opts: { snapshot?: boolean; launcher?: boolean } = {}): { argv: string[]; env: NodeJS.ProcessEnv } {
  const l = launcher();
  if (opts.snapshot !== false && opts.launcher !== false) {
    return { argv: [LAUNCHER], env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env['PATH'] ?? ''}` } };
  }
  const snapshot = opts.snapshot === false ? [] : ['--snapshot-blob', BLOB];
  return { argv: [process.execPath, ...l.nodeArgs, ...snapshot, CLI], env: { ...process.env, ...l.env } };
}

export type Versions = Record<string, string>;

export const msg = (l: Line): string => (typeof l.json?.['msg'] === 'string' ? l.json['msg'] : '');

export interface StartOptions {
  envoy: string;
  /** Run inside this network namespace (ip netns exec). */
  ns?: string;
  args?: string[];
  /** false: dist/src/cli.js without the startup snapshot. */
  snapshot?: boolean;
  /** false: node from the startup snapshot, without the launcher (no Envoy before node). */
  launcher?: boolean;
}

export class MeshletRun {
  readonly proc: Proc;
  envoyPid: number | undefined;

  constructor(
    readonly configPath: string,
    readonly debugUrl: string,
    opts: StartOptions,
  ) {
    const m = asMeshlet({ snapshot: opts.snapshot ?? true, launcher: opts.launcher ?? true });
    const argv = [...m.argv, 'run', '--config', configPath, '--skip-iptables-check', '--drain-seconds', '0', '--envoy', opts.envoy, ...(opts.args ?? [])];
    this.proc = new Proc('meshlet run', opts.ns ? ['ip', 'netns', 'exec', opts.ns, ...argv] : argv, { env: m.env });
    this.proc.onLine((l) => {
      if (msg(l) === 'envoy started' && typeof l.json?.['pid'] === 'number') {
        this.envoyPid = l.json['pid'];
        trackPid(this.envoyPid);
      }
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** performance.now() of the first line with this message, relative to spawn; NaN if absent. */
  mark(message: string): number {
    const l = this.proc.lines.find((x) => msg(x) === message);
    return l ? l.t - this.proc.spawnedAt : Number.NaN;
  }

  /** Polls /ready (host network namespace only); resolves with the time of the first 200. */
  waitReady(timeoutMs = 30_000, everyMs = 5, requestMs = 1_000): Promise<number> {
    return Promise.race([
      pollUntil('meshlet /ready 200', () => is200(`${this.debugUrl}/ready`, requestMs), timeoutMs, everyMs).catch((err: unknown) => {
        throw new Error(`${(err as Error).message} (${this.debugUrl}); meshlet's last lines:\n${this.proc.tail()}`);
      }),
      this.proc.exited.then((code) => {
        throw new Error(`meshlet exited (${code}) before ready:\n${this.proc.tail()}`);
      }),
    ]);
  }

  /**
   * After line `from`: the next reload of `kind`, then, for every type whose
   * version changed against `prev`, Envoy's ACK of it. Wildcard types (CDS,
   * LDS) are ACKed at the snapshot's type version; secrets are requested by
   * name and ACKed at a version over the names requested, so for them the
   * first ACK after the reload counts (one change is in flight at a time).
   */
  async reloadAcked(
    kind: 'config' | 'certs',
    from: number,
    prev: Versions,
    timeoutMs = 10_000,
  ): Promise<{ applied: Line; ackedAt: number; versions: Versions; changed: string[]; next: number }> {
    const { line: applied, index } = await this.proc.waitLine(
      `${kind} reload`,
      (l) => l.json?.['kind'] === kind && /^reload (applied|refused)/.test(msg(l)),
      from,
      timeoutMs,
    );
    if (msg(applied) !== 'reload applied') throw new Error(`reload refused: ${String(applied.json?.['error'])}`);
    const versions = (applied.json?.['versions'] ?? {}) as Versions;
    const changed = Object.keys(versions).filter((t) => versions[t] !== prev[t]);
    let ackedAt = applied.t;
    let next = index + 1;
    for (const typeUrl of changed) {
      const exact = typeUrl !== TYPE.secret;
      const { line, index: i } = await this.proc.waitLine(
        `ACK of ${typeUrl.slice(typeUrl.lastIndexOf('.') + 1)}`,
        (l) => msg(l) === 'xDS ACK' && l.json?.['typeUrl'] === typeUrl && (!exact || l.json['version'] === versions[typeUrl]),
        index,
        timeoutMs,
      );
      ackedAt = Math.max(ackedAt, line.t);
      next = Math.max(next, i + 1);
    }
    return { applied, ackedAt, versions, changed, next };
  }

  /**
   * The first response and ACK of each type after Envoy's stream opened, as
   * times since spawn: the initial push, without polling anything.
   */
  async initialPush(timeoutMs: number): Promise<Record<string, { sent: number; acked: number }>> {
    const out: Record<string, { sent: number; acked: number }> = {};
    for (const typeUrl of Object.values(TYPE)) {
      const first =
        (m: string): ((l: Line) => boolean) =>
        (l) =>
          msg(l) === m && l.json?.['typeUrl'] === typeUrl;
      const { line: ack } = await this.proc.waitLine(`initial ACK of ${typeUrl}`, first('xDS ACK'), 0, timeoutMs);
      const sent = this.proc.lines.find(first('xDS response'))?.t ?? Number.NaN;
      out[typeUrl] = { sent: sent - this.proc.spawnedAt, acked: ack.t - this.proc.spawnedAt };
    }
    return out;
  }

  /** SIGTERM (meshlet drains and stops its Envoy), then make sure that Envoy is gone too. */
  async stop(): Promise<void> {
    await this.proc.stop('SIGTERM', 10_000);
    const pid = this.envoyPid;
    if (pid !== undefined && alive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* raced with its exit */
      }
    }
    untrackPid(pid);
  }
}
