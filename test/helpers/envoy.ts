// Running the real Envoy in tests: find it, validate a bootstrap with
// `--mode validate`, and start it, waiting on its admin endpoint (never on a
// sleep) and always killing it in teardown.
import { tmpDir as makeTmpDir } from './tmp.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { findEnvoy } from '../../src/envoy/binary.js';
import { renderBootstrap } from '../../src/envoy/bootstrap.js';
import type { JsonObject } from '../../src/xds/protos.js';

let cached: string | undefined;

/** $MESHLET_ENVOY, else the pip package's real binary (a PATH shim costs ~0.2 s per start), else PATH. */
export function envoyBinary(): string {
  if (cached) return cached;
  try {
    cached = findEnvoy({ env: { MESHLET_ENVOY: process.env['MESHLET_ENVOY'], PATH: '' } });
  } catch {
    cached = findEnvoy();
  }
  return cached;
}

const tmpDir = (): string => makeTmpDir('meshlet-envoy-');

export function writeBootstrap(bootstrap: JsonObject, dir = tmpDir()): string {
  const file = path.join(dir, 'envoy.json');
  writeFileSync(file, renderBootstrap(bootstrap), { mode: 0o600 });
  return file;
}

export interface RunResult {
  code: number | null;
  output: string;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const append = (b: Buffer): void => void (output += b.toString());
    child.stdout.on('data', append);
    child.stderr.on('data', append);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** `envoy --mode validate`: loads the bootstrap as Envoy would, serves nothing. */
export async function validateBootstrap(bootstrap: JsonObject, dir?: string): Promise<RunResult & { ok: boolean }> {
  const file = writeBootstrap(bootstrap, dir);
  const r = await run(envoyBinary(), ['--mode', 'validate', '-c', file, '--disable-hot-restart', '-l', 'warning'], 30_000);
  return { ...r, ok: r.code === 0 };
}

export interface AdminResponse {
  status: number;
  body: string;
}

/** Where admin listens: a TCP address, or a Unix socket (reachable from outside a network namespace). */
export type AdminEndpoint = { socketPath: string } | { host: string; port: number };

export function adminEndpoint(bootstrap: JsonObject): AdminEndpoint {
  const address = ((bootstrap['admin'] as JsonObject | undefined)?.['address'] ?? {}) as JsonObject;
  const pipe = address['pipe'] as JsonObject | undefined;
  if (pipe) return { socketPath: pipe['path'] as string };
  const sa = address['socket_address'] as JsonObject | undefined;
  if (!sa) throw new Error('bootstrap has no admin address');
  return { host: sa['address'] as string, port: sa['port_value'] as number };
}

export function adminGet(endpoint: AdminEndpoint, urlPath: string, timeoutMs = 2000): Promise<AdminResponse> {
  return new Promise((resolve, reject) => {
    const target = 'socketPath' in endpoint ? { socketPath: endpoint.socketPath } : { host: endpoint.host, port: endpoint.port };
    const req = http.get({ ...target, path: urlPath, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`admin ${urlPath}: timed out`)));
    req.on('error', reject);
  });
}

export interface EnvoyHandle {
  pid: number;
  admin(urlPath: string): Promise<AdminResponse>;
  /** Envoy's stdout and stderr so far (log level info: no key material). */
  logs(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  bootstrap: JsonObject;
  dir?: string;
  /** Run inside this network namespace (`ip netns exec`, which execs: the pid is Envoy's). */
  netns?: string;
  /** Also wait until these listeners are active. */
  listeners?: string[];
  readyTimeoutMs?: number;
}

async function activeListeners(endpoint: AdminEndpoint): Promise<string[]> {
  const r = await adminGet(endpoint, '/listeners?format=json');
  const parsed = JSON.parse(r.body) as { listener_statuses?: { name: string }[] };
  return (parsed.listener_statuses ?? []).map((l) => l.name);
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** Starts Envoy and resolves once /ready says LIVE (and the named listeners are active). */
export async function startEnvoy(opts: StartOptions): Promise<EnvoyHandle> {
  const file = writeBootstrap(opts.bootstrap, opts.dir);
  const endpoint = adminEndpoint(opts.bootstrap);
  const envoyArgs = ['-c', file, '--disable-hot-restart', '-l', 'info'];
  const child = opts.netns ? spawn('ip', ['netns', 'exec', opts.netns, envoyBinary(), ...envoyArgs]) : spawn(envoyBinary(), envoyArgs);
  let output = '';
  const append = (b: Buffer): void => {
    output = (output + b.toString()).slice(-256 * 1024);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const handle: EnvoyHandle = {
    pid: child.pid ?? -1,
    admin: (p) => adminGet(endpoint, p),
    logs: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = exited(child);
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`Envoy exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output.slice(-4000)}`);
    }
    try {
      const r = await adminGet(endpoint, '/ready', 500);
      last = `/ready ${r.status} ${r.body.trim()}`;
      if (r.status === 200) {
        const active = opts.listeners ? await activeListeners(endpoint) : [];
        const missing = (opts.listeners ?? []).filter((l) => !active.includes(l));
        if (missing.length === 0) return handle;
        last = `listeners not active yet: ${missing.join(', ')}`;
      }
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await handle.stop();
  throw new Error(`Envoy not ready within the deadline (${last}):\n${output.slice(-4000)}`);
}
