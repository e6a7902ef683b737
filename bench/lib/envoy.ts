// The baseline: the same Envoy binary on `meshlet bootstrap --static` (every
// listener, cluster and secret inline, no xDS), started exactly the way
// meshlet's supervisor starts it (same argv, uid 1337, only CAP_NET_ADMIN).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { findEnvoy } from '../../src/envoy/binary.js';
import { adminGet, ensureProxyDir } from '../../src/envoy/admin.js';
import { envoyCommand } from '../../src/envoy/supervisor.js';
import { CLI } from './meshlet.js';
import { handToProxy } from './pod.js';
import { pollUntil, tcpAccepts } from './http.js';
import { must, Proc } from './procs.js';

/** $MESHLET_ENVOY, else the system-wide copy (a pyenv shim costs ~0.2 s per start and uid 1337 cannot run it). */
export function envoyPath(): string {
  const explicit = process.env['MESHLET_ENVOY'];
  if (explicit) return explicit;
  return existsSync('/usr/local/bin/envoy') ? '/usr/local/bin/envoy' : findEnvoy();
}

export async function envoyVersion(envoy: string): Promise<string> {
  const out = await must([envoy, '--version']);
  return /version: \S+\/(\d+\.\d+\.\d+)\//.exec(out)?.[1] ?? out.trim();
}

/** Runs `meshlet bootstrap --static` for `configPath` and makes the result readable by the proxy uid. */
export async function writeStaticBootstrap(configPath: string, out: string, ns?: string): Promise<void> {
  const argv = [process.execPath, CLI, 'bootstrap', '--static', '--config', configPath, '--out', out];
  await must(ns ? ['ip', 'netns', 'exec', ns, ...argv] : argv);
  handToProxy(out);
}

/** The admin socket a bootstrap names; its directory is made the proxy uid's, as meshlet run does. */
export function staticAdminSocket(bootstrapPath: string): string {
  const b = JSON.parse(readFileSync(bootstrapPath, 'utf8')) as { admin?: { address?: { pipe?: { path?: string } } } };
  const socket = b.admin?.address?.pipe?.path;
  if (socket === undefined) throw new Error(`${bootstrapPath}: admin is not a Unix socket`);
  mkdirSync(path.dirname(path.dirname(socket)), { recursive: true, mode: 0o755 });
  ensureProxyDir(path.dirname(socket), 1337, 1337);
  return socket;
}

export function startStaticEnvoy(envoy: string, bootstrapPath: string, ns?: string, extraArgs: string[] = []): Proc {
  staticAdminSocket(bootstrapPath);
  const argv = envoyCommand({ envoyPath: envoy, bootstrapPath, uid: 1337, gid: 1337, extraArgs }, process.getuid?.() ?? 0);
  return new Proc('static envoy', ns ? ['ip', 'netns', 'exec', ns, ...argv] : argv);
}

/**
 * Starts Envoy on a static bootstrap and resolves with the ms from spawn
 * until admin /ready is 200 and `probe` (one of its listeners) accepts; the
 * Envoy is stopped before returning.
 */
export async function timeStaticStart(
  envoy: string,
  bootstrapPath: string,
  probe: { host: string; port: number },
  opts: { everyMs: number; timeoutMs: number; requestMs: number; onLive?: (pid: number | undefined) => void; extraArgs?: string[] },
): Promise<number> {
  const socket = staticAdminSocket(bootstrapPath);
  const proc = startStaticEnvoy(envoy, bootstrapPath, undefined, opts.extraArgs);
  try {
    const live = async (): Promise<boolean> => (await adminGet(socket, '/ready', { timeoutMs: opts.requestMs }).catch(() => undefined))?.status === 200;
    const up = async (): Promise<boolean> => (await live()) && (await tcpAccepts(probe.host, probe.port));
    const at = await Promise.race([
      pollUntil('static Envoy LIVE with listeners', up, opts.timeoutMs, opts.everyMs),
      proc.exited.then((code) => {
        throw new Error(`static Envoy exited (${code}):\n${proc.tail()}`);
      }),
    ]);
    opts.onLive?.(proc.pid);
    return at - proc.spawnedAt;
  } finally {
    await proc.stop('SIGTERM', 5_000);
  }
}
