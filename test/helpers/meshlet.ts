// Runs the built meshlet CLI (dist/) as a real process for integration tests:
// a temp dir with a PKI, a config with unique loopback ports, and helpers to
// wait for readiness and to stop everything in afterEach.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import net from 'node:net';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { createPki, swapSecretVolume, type Pki, type Leaf } from '../../src/devpki/pki.js';
import { createRootLogger } from '../../src/log.js';
import { loadConfig } from '../../src/config/load.js';
import { findEnvoy } from '../../src/envoy/binary.js';
import { Meshlet, type RunOptions } from '../../src/run/service.js';
import { adminJson } from '../../src/envoy/admin.js';
import { adminSocketPath } from '../../src/config/constants.js';
import { TYPE_URL } from '../../src/xds/protos.js';
import { AdsTestClient } from './xds-client.js';

export const CLI = path.resolve('dist/src/cli.js');
/** The startup snapshot `npm run build` writes (scripts/snapshot.mjs). */
export const BLOB = path.resolve('dist/meshlet.blob');
/**
 * node's arguments that run `meshlet` from the startup snapshot, with CLI as
 * argv[1], as the launcher does (scripts/install-snapshot.sh): the tests run
 * meshlet through the launcher (LAUNCHER), or this way without it;
 * test/run/bundle.test.ts and test/run/snapshot.test.ts cover
 * dist/src/cli.js without the snapshot (`npx meshlet`).
 */
export const MESHLET: readonly string[] = ['--snapshot-blob', BLOB, CLI];
/**
 * The `meshlet` launcher `npm run build` writes (scripts/install-snapshot.sh,
 * src/envoy/early.ts), as the image installs it: for `meshlet run` it starts
 * Envoy before node. It runs the `node` on PATH (this test's node goes first).
 */
export const LAUNCHER = path.resolve('dist/meshlet');
export const LAUNCHER_ENV = { PATH: `${path.dirname(process.execPath)}:${process.env['PATH'] ?? ''}` };
// `npm run build` writes the bundle, then the snapshot made from it. A snapshot older than the bundle (tsc or the
// bundle step run alone) would run the code of an earlier build under every test that starts meshlet.
if (existsSync(BLOB) && existsSync(CLI) && statSync(BLOB).mtimeMs < statSync(CLI).mtimeMs) {
  throw new Error(`${BLOB} is older than ${CLI}, so the tests would run an earlier build: run npm run build, which makes both`);
}

// A random first block: test processes started close together (vitest
// workers, other runs on the same machine) have close pids, so a pid-derived
// start made their blocks overlap. Below the kernel's ephemeral range
// (32768-60999 here): an outgoing connection could otherwise take a port of
// the block between the free check and meshlet's bind (seen as a meshlet that
// never served /ready in a full run).
const FIRST_BASE = 20_000;
const LAST_BASE = 32_600;
let nextBase = FIRST_BASE + randomInt((LAST_BASE - FIRST_BASE) / 100) * 100;
/** A fresh block of 100 ports per pod, so TIME_WAIT from a previous test never collides. */
export function portBlock(): number {
  nextBase += 100;
  if (nextBase > LAST_BASE) nextBase = FIRST_BASE;
  return nextBase;
}

/** True when nothing listens on `port` on 127.0.0.1 (we could bind it just now). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** The next block whose ports a pod uses (see makePod and the tests' mapped ports at +50/+51) are free now. */
async function freePortBlock(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = portBlock();
    const used = [0, 1, 2, 6, 20, 50, 51].map((o) => base + o);
    if ((await Promise.all(used.map(portFree))).every(Boolean)) return base;
  }
  throw new Error('no block of free loopback ports found in 50 tries');
}

export interface Pod {
  dir: string;
  configPath: string;
  base: number;
  pki: Pki;
  leaf: Leaf;
  certVersion: number;
  certDir: string;
  ports: { debug: number; inbound: number; outbound: number; portless: number };
  /** Envoy's admin Unix socket (root and uid 1337 only). */
  adminSocket: string;
  config: Record<string, unknown>;
}

/** A pod directory with certificates and a config; `extra` is merged over the defaults. */
export async function makePod(extra: Record<string, unknown> | ((base: number) => Record<string, unknown>) = {}, sans = ['web']): Promise<Pod> {
  const dir = mkdtempSync(path.join(tmpdir(), 'meshlet-it-'));
  // Envoy runs as uid 1337 and must reach the socket and bootstrap inside.
  chmodSync(dir, 0o755);
  const pki = await createPki(path.join(dir, 'ca'));
  const leaf = await pki.issueLeaf({ sans });
  const certDir = path.join(dir, 'certs');
  await pki.writeContrastDir(path.join(certDir, '..v0'), leaf);
  symlinkSync('..v0', path.join(certDir, '..data'));
  for (const f of ['mesh-ca.pem', 'certChain.pem', 'key.pem']) symlinkSync(`..data/${f}`, path.join(certDir, f));
  const base = await freePortBlock();
  const ports = { debug: base + 20, inbound: base + 6, outbound: base + 1, portless: base + 2 };
  const config: Record<string, unknown> = {
    certs: { ca: `${certDir}/mesh-ca.pem`, certChain: `${certDir}/certChain.pem`, key: `${certDir}/key.pem` },
    proxy: {
      inboundPort: ports.inbound,
      outboundPort: ports.outbound,
      portlessEgressPort: ports.portless,
      xdsSocket: `${dir}/run/xds.sock`,
      bootstrapPath: `${dir}/run/envoy.json`,
    },
    debug: { address: `127.0.0.1:${ports.debug}` },
    ...(typeof extra === 'function' ? extra(base) : extra),
  };
  const configPath = path.join(dir, 'config.yaml');
  writeFileSync(configPath, stringify(config));
  return { dir, configPath, base, pki, leaf, certVersion: 0, certDir, ports, adminSocket: adminSocketPath(`${dir}/run/xds.sock`), config };
}

/** Replaces the config file atomically (write, then rename). */
export function writeConfig(pod: Pod, config: Record<string, unknown> | string): void {
  const tmp = `${pod.configPath}.tmp`;
  writeFileSync(tmp, typeof config === 'string' ? config : stringify(config));
  renameSync(tmp, pod.configPath);
}

/** Rotates the workload certificate the way the kubelet updates a Secret volume: one atomic ..data swap. */
export async function rotateCerts(pod: Pod, leaf: Leaf): Promise<void> {
  pod.certVersion += 1;
  await swapSecretVolume(pod.pki, pod.certDir, pod.certVersion, leaf);
  pod.leaf = leaf;
}

export interface MeshletProcess {
  child: ChildProcess;
  logs: () => string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * `wrap` goes before meshlet, e.g. setpriv to narrow its capabilities. By
 * default meshlet starts as the image starts it, through the launcher;
 * `launcher: false` starts node from the snapshot directly (node spawns
 * Envoy), and `snapshot: false` runs dist/src/cli.js itself.
 */
export function startMeshlet(
  pod: Pod,
  args: string[] = [],
  opts: { ns?: string; wrap?: string[]; snapshot?: boolean; launcher?: boolean; env?: Record<string, string> } = {},
): MeshletProcess {
  const viaLauncher = opts.snapshot !== false && opts.launcher !== false;
  const argv = [
    ...(opts.wrap ?? []),
    ...(viaLauncher ? [LAUNCHER] : [process.execPath, ...(opts.snapshot === false ? [CLI] : MESHLET)]),
    'run',
    '--config',
    pod.configPath,
    '--skip-iptables-check',
    '--drain-seconds',
    '0',
    ...args,
  ];
  const [cmd = '', ...rest] = argv;
  const [bin, full] = opts.ns ? ['ip', ['netns', 'exec', opts.ns, ...argv]] : [cmd, rest];
  const env = { ...process.env, MESHLET_LOG_LEVEL: 'debug', ...(viaLauncher ? LAUNCHER_ENV : {}), ...opts.env };
  const child = spawn(bin, full, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    logs: () => out,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/**
 * `meshlet run --no-envoy` under `wrap` (env assignments, a preload), until it
 * has served one ADS stream its clusters and `then` has run; then stopped,
 * which must end it with 0. The steady state's code has run by then. Returns
 * everything it wrote (its log and stderr).
 */
export async function serveOneStream(pod: Pod, wrap: string[], then?: () => Promise<void>, opts: { snapshot?: boolean } = {}): Promise<string> {
  const m = startMeshlet(pod, ['--no-envoy'], { wrap: ['env', ...wrap], ...opts });
  const client = new AdsTestClient(path.join(pod.dir, 'run', 'xds.sock'));
  try {
    await until('meshlet serving (log line)', () => {
      if (m.child.exitCode !== null) throw new Error(`meshlet exited ${m.child.exitCode}: ${m.logs()}`);
      return m.logs().includes('meshlet serving') ? true : undefined;
    });
    const sotw = client.sotw('one-stream');
    sotw.request(TYPE_URL.cluster);
    const res = await sotw.next();
    if (res.type_url !== TYPE_URL.cluster) throw new Error(`the ADS stream answered ${res.type_url}, not clusters`);
    await then?.();
  } finally {
    client.close();
    const code = await m.stop();
    if (code !== 0) throw new Error(`meshlet run --no-envoy exited ${code}: ${m.logs()}`);
  }
  return m.logs();
}

export async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
  return { status: res.status, body: (await res.json()) as T };
}

/** GET from Envoy's admin over its Unix socket, as JSON. */
export function envoyAdminJson<T>(pod: Pod, urlPath: string): Promise<T> {
  return adminJson<T>(pod.adminSocket, urlPath, { timeoutMs: 3_000 });
}

export async function getText(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
  return { status: res.status, body: await res.text() };
}

/** Polls `probe` until it returns a value, with a hard deadline. */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? ` (last error: ${lastErr})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function waitReady(pod: Pod, timeoutMs = 30_000): Promise<void> {
  await until('meshlet /ready', async () => ((await getText(`http://127.0.0.1:${pod.ports.debug}/ready`)).status === 200 ? true : undefined), timeoutMs);
}

export function cleanupPod(pod: Pod): void {
  rmSync(pod.dir, { recursive: true, force: true });
}

/**
 * An in-process meshlet for `pod` (for the test seams), logging at debug to
 * `<pod dir>/meshlet.log`, started. `onCleanup` receives its stop.
 */
export async function inProcess(
  p: Pod,
  onCleanup: (f: () => Promise<void>) => void,
  opts: Pick<RunOptions, 'noEnvoy' | 'envoyConfigDump' | 'watch'> = {},
): Promise<{ meshlet: Meshlet; logFile: string }> {
  const logFile = `${p.dir}/meshlet.log`;
  const fd = openSync(logFile, 'a');
  const meshlet = new Meshlet({
    loaded: loadConfig(p.configPath),
    logger: createRootLogger('debug', fd),
    skipIptablesCheck: true,
    ...opts,
    ...(opts.noEnvoy ? {} : { envoyPath: findEnvoy() }),
  });
  onCleanup(async () => {
    await meshlet.stop(0);
    closeSync(fd);
  });
  await meshlet.start();
  return { meshlet, logFile };
}
