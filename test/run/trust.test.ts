// A config the pod's policy covers: a SHA-256 pin on the file, signed and
// versioned updates, and the YAML in the environment. The attacker here
// controls the config volume (a ConfigMap rewritten through the API server):
// they can write any bytes and replay any config that was ever signed, but do
// not hold the signing key. Real meshlet, real Envoy, loopback only (mapped
// mode needs no iptables).
import { describe, expect, it } from 'vitest';
import { chownSync, closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import path from 'node:path';
import { stringify } from 'yaml';
import { createRootLogger } from '../../src/log.js';
import { loadConfig } from '../../src/config/load.js';
import { sha256Hex, signConfig } from '../../src/config/trust.js';
import { ConfigInvalidError } from '../../src/config/errors.js';
import { findEnvoy } from '../../src/envoy/binary.js';
import { Meshlet } from '../../src/run/service.js';
import { TYPE_URL } from '../../src/xds/protos.js';
import { cleanupPod, getJson, getText, makePod, startMeshlet, until, waitReady, type Pod, MESHLET } from '../helpers/meshlet.js';
import { startEchoApp, tlsExchange } from '../helpers/traffic.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ConfigVolume } from '../helpers/config-volume.js';

const cleanups = cleanupAfterEach();

interface Keys {
  privatePem: string;
  publicPem: string;
}
function keys(type: 'ed25519' | 'ec' = 'ed25519'): Keys {
  const k = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = (o: KeyObject, t: 'pkcs8' | 'spki'): string => o.export({ type: t, format: 'pem' }).toString();
  return { privatePem: pem(k.privateKey, 'pkcs8'), publicPem: pem(k.publicKey, 'spki') };
}

const mapped =
  (policy: string) =>
  (base: number): Record<string, unknown> => ({ ingress: { mode: 'mapped', ports: [{ name: 'app', port: base + 50, mappedPort: base + 51, policy }] } });

function text(p: Pod, version: number, policy: string): string {
  return stringify({ version, ...p.config, ...mapped(policy)(p.base) });
}

function signed(k: Keys, t: string): string {
  return `${signConfig(k.privatePem, Buffer.from(t)).signature}\n`;
}

async function pinnedPod(opts: { key?: Keys; policy?: string } = {}) {
  const policy = opts.policy ?? 'tls';
  const p = await makePod(mapped(policy));
  cleanups.push(() => cleanupPod(p));
  const app = await startEchoApp(p.base + 50);
  cleanups.push(() => app.close());
  const vol = new ConfigVolume(path.join(p.dir, 'cfg'));
  vol.publish(text(p, 1, policy));
  const env = {
    MESHLET_CONFIG_SHA256: sha256Hex(text(p, 1, policy)),
    MESHLET_CONFIG_STATE: path.join(p.dir, 'run', 'config-state.json'),
    ...(opts.key ? { MESHLET_CONFIG_PUBKEY: opts.key.publicPem } : {}),
  };
  return { p, vol, env, port: p.base + 51 };
}

async function serve(p: Pod, loaded: ReturnType<typeof loadConfig>): Promise<{ meshlet: Meshlet; logFile: string }> {
  const logFile = `${p.dir}/meshlet.log`;
  const fd = openSync(logFile, 'a');
  const meshlet = new Meshlet({ loaded, logger: createRootLogger('debug', fd), skipIptablesCheck: true, envoyPath: findEnvoy(), watch: { pollMs: 200 } });
  cleanups.push(async () => {
    await meshlet.stop(0);
    closeSync(fd);
  });
  await meshlet.start();
  await waitReady(p);
  return { meshlet, logFile };
}

const refusedLine = (logFile: string, reason: string): true | undefined => {
  const lines = readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('config update refused'));
  return lines.some((l) => (JSON.parse(l) as { reason?: string }).reason === reason) ? true : undefined;
};

function clientCert(p: Pod): { cert: string; key: string; ca: string } {
  return { cert: p.leaf.chainPem, key: p.leaf.keyPem, ca: p.pki.caPem };
}

interface XdsView {
  trust: { mode: string; version?: number; sha256?: string; pinnedSha256?: string; reloads: string };
  types: Record<string, { version: string }>;
  reloads: { ok: boolean; error?: string }[];
}

describe('a pinned config on a volume the attacker controls', () => {
  it('an unsigned rewrite, and one signed by another key, are refused, logged and counted; the old config keeps serving', async () => {
    const key = keys();
    const { p, vol, env, port } = await pinnedPod({ key, policy: 'mtls' });
    const { meshlet, logFile } = await serve(p, loadConfig(path.join(p.dir, 'cfg', 'config.yaml'), env));
    const debug = `http://127.0.0.1:${p.ports.debug}`;
    const before = (await getJson<XdsView>(`${debug}/xds`)).body;
    expect(before.trust).toMatchObject({ mode: 'pinned', version: 1, reloads: 'signed-only' });
    expect(before.trust.sha256).toBe(env.MESHLET_CONFIG_SHA256);

    // The attack: drop the client-certificate requirement (mtls → tls), unsigned, then signed with the attacker's own key.
    vol.publish(text(p, 2, 'tls'));
    await until('the reload-refused log line (unsigned)', () => refusedLine(logFile, 'unsigned'));
    vol.publish(text(p, 3, 'tls'), signed(keys(), text(p, 3, 'tls')));
    await until('the reload-refused log line (bad signature)', () => refusedLine(logFile, 'bad-signature'));

    const metrics = (await getText(`${debug}/metrics`)).body;
    expect(metrics).toMatch(/meshlet_config_updates_refused_total\{reason="unsigned"\} 1/);
    expect(metrics).toMatch(/meshlet_config_updates_refused_total\{reason="bad-signature"\} 1/);
    expect(meshlet.metrics.reloadErrors.get({ kind: 'config' })).toBe(2);
    expect(meshlet.metrics.reloads.get({ kind: 'config' })).toBe(0);
    const after = (await getJson<XdsView>(`${debug}/xds`)).body;
    expect(after.types[TYPE_URL.listener]?.version).toBe(before.types[TYPE_URL.listener]?.version);
    expect(after.trust).toMatchObject({ mode: 'pinned', version: 1 });
    expect(after.reloads.at(-1)?.error).toMatch(/without a valid signature in .*config\.yaml\.sig: the signature does not verify/);
    // Still the pinned config: a client certificate is still required.
    await expect(tlsExchange(port, 'no-cert')).rejects.toThrow();
    expect((await tlsExchange(port, 'still-v1', clientCert(p))).reply).toBe('echo:still-v1');
  });

  it('pinned without a key: every change is refused with the way to change it', async () => {
    const { p, vol, env, port } = await pinnedPod();
    const { meshlet, logFile } = await serve(p, loadConfig(path.join(p.dir, 'cfg', 'config.yaml'), env));
    vol.publish(text(p, 2, 'mtls'));
    await until('the reload-refused log line (pinned)', () => refusedLine(logFile, 'pinned'));
    const last = (await getJson<XdsView>(`http://127.0.0.1:${p.ports.debug}/xds`)).body.reloads.at(-1);
    expect(last?.error).toMatch(/pinned to [0-9a-f]{64} and no MESHLET_CONFIG_PUBKEY accepts signed updates; to change it, change the pin/);
    expect(meshlet.metrics.reloads.get({ kind: 'config' })).toBe(0);
    expect((await tlsExchange(port, 'v1')).reply).toBe('echo:v1');
  });

  it('a signed update with a higher version is applied (Envoy ACKs it); a replayed older signed config is refused', async () => {
    const key = keys('ec');
    const { p, vol, env, port } = await pinnedPod({ key });
    const { meshlet, logFile } = await serve(p, loadConfig(path.join(p.dir, 'cfg', 'config.yaml'), env));
    const acked = new Promise<void>((resolve) => meshlet.ads.onAck((e) => e.typeUrl === TYPE_URL.listener && resolve()));
    const v2 = text(p, 2, 'mtls');
    vol.publish(v2, signed(key, v2));
    await acked;
    await waitReady(p);
    await expect(tlsExchange(port, 'no-cert')).rejects.toThrow();
    expect((await tlsExchange(port, 'with-cert', clientCert(p))).reply).toBe('echo:with-cert');
    const xds = (await getJson<XdsView>(`http://127.0.0.1:${p.ports.debug}/xds`)).body;
    expect(xds.trust).toMatchObject({ mode: 'signed', version: 2, sha256: sha256Hex(v2) });
    expect(JSON.parse(readFileSync(env.MESHLET_CONFIG_STATE, 'utf8'))).toEqual({ version: 2, sha256: sha256Hex(v2) });

    // Replay: v1 was legitimately signed once (it is the pinned config), and v2 again with its valid signature is a no-op.
    const v1 = text(p, 1, 'tls');
    vol.publish(v1, signed(key, v1));
    await until('the reload-refused log line (rollback)', () => refusedLine(logFile, 'rollback'));
    expect(meshlet.metrics.reloads.get({ kind: 'config' })).toBe(1);
    await expect(tlsExchange(port, 'no-cert-again')).rejects.toThrow();
    // Same version, other bytes: also refused (a second config under one version is not an update).
    const v2b = text(p, 2, 'tls');
    vol.publish(v2b, signed(key, v2b));
    await until('two rollback refusals', () => (meshlet.metrics.reloadErrors.get({ kind: 'config' }) >= 2 ? true : undefined));
    expect((await getText(`http://127.0.0.1:${p.ports.debug}/metrics`)).body).toMatch(/meshlet_config_updates_refused_total\{reason="rollback"\} 2/);
  });
});

describe('pins at start', () => {
  it('a hash mismatch stops meshlet run with both hashes named', async () => {
    const p = await makePod();
    cleanups.push(() => cleanupPod(p));
    const actual = sha256Hex(readFileSync(p.configPath));
    const pinned = 'ab'.repeat(32);
    const m = startMeshlet(p, ['--config-sha256', pinned]);
    cleanups.push(() => void m.stop());
    expect(await m.exited).toBe(1);
    expect(m.logs()).toContain(`SHA-256 of the file is ${actual}`);
    expect(m.logs()).toContain(`pins ${pinned}`);
    expect(m.logs()).not.toContain('meshlet serving');
  });

  it('after a signed update, a sidecar restart starts from the signed file; replaying an older signed one at restart is refused', async () => {
    const key = keys();
    const { p, vol, env } = await pinnedPod({ key });
    const file = path.join(p.dir, 'cfg', 'config.yaml');
    const first = loadConfig(file, env);
    first.gate?.persist();
    const v3 = text(p, 3, 'mtls');
    vol.publish(v3, signed(key, v3));
    const a = first.gate?.admit(v3, signed(key, v3));
    expect(a?.kind).toBe('apply');
    if (a?.kind === 'apply') first.gate?.commit(a);

    // The restarted sidecar: the file no longer has the pinned hash, but it is signed at the version this pod reached.
    expect(loadConfig(file, env).trust).toMatchObject({ mode: 'signed', version: 3 });
    // The attacker swaps in the pinned v1 (which matches the pin!) or a signed v2: both below what the pod already ran.
    vol.publish(text(p, 1, 'tls'));
    expect(() => loadConfig(file, env)).toThrow(/already ran signed version 3; going back to the pinned config \(version 1\) is refused/);
    const v2 = text(p, 2, 'tls');
    vol.publish(v2, signed(key, v2));
    expect(() => loadConfig(file, env)).toThrow(/signed version 2 is below the lowest accepted \(3/);
    // A new pod (no state) starts on the pinned config: the host cannot pick which signed one. Only when the operator
    // names the lowest signed version a new pod may start on (MESHLET_CONFIG_MIN_VERSION) does a signed one at or above it do.
    rmSync(env.MESHLET_CONFIG_STATE);
    expect(() => loadConfig(file, env)).toThrow(
      /is signed but not the pinned config .*and a new pod starts on the pinned one: put the file's hash in the pod spec/,
    );
    expect(loadConfig(file, { ...env, MESHLET_CONFIG_MIN_VERSION: '2' }).trust).toMatchObject({ mode: 'signed', version: 2 });
    expect(() => loadConfig(file, { ...env, MESHLET_CONFIG_MIN_VERSION: '3' })).toThrow(/signed version 2 is below the lowest accepted \(3/);
  });

  it('a state file the proxy uid could have written is not trusted', async () => {
    const key = keys();
    const { p, env } = await pinnedPod({ key });
    const file = path.join(p.dir, 'cfg', 'config.yaml');
    loadConfig(file, env).gate?.persist();
    chownSync(env.MESHLET_CONFIG_STATE, 1337, 1337);
    expect(() => loadConfig(file, env)).toThrow(/replay-protection state is not owned by uid 0/);
  });

  it('the documented openssl recipes make signatures meshlet accepts (Ed25519 and ECDSA P-256)', async () => {
    const p = await makePod();
    cleanups.push(() => cleanupPod(p));
    const dir = path.join(p.dir, 'ossl');
    mkdirSync(dir);
    const cfg = path.join(dir, 'config.yaml');
    writeFileSync(cfg, text(p, 7, 'tls'));
    for (const [alg, genArgs, signArgs] of [
      ['ed25519', ['-algorithm', 'ed25519'], (k: string) => ['pkeyutl', '-sign', '-inkey', k, '-rawin', '-in', cfg]],
      ['ecdsa', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], (k: string) => ['dgst', '-sha256', '-sign', k, cfg]],
    ] as const) {
      const k = path.join(dir, `${alg}.pem`);
      execFileSync('openssl', ['genpkey', ...genArgs, '-out', k]);
      const pub = execFileSync('openssl', ['pkey', '-in', k, '-pubout']).toString();
      writeFileSync(`${cfg}.sig`, execFileSync('openssl', signArgs(k)).toString('base64'));
      const env = { MESHLET_CONFIG_PUBKEY: pub, MESHLET_CONFIG_STATE: path.join(dir, 'state.json') };
      expect(loadConfig(cfg, env).trust, alg).toMatchObject({ mode: 'signed', version: 7 });
      // And meshlet sign's output verifies under the same pin.
      execFileSync(process.execPath, [...MESHLET, 'sign', '--key', k, cfg]);
      expect(loadConfig(cfg, env).trust.mode, `${alg} via meshlet sign`).toBe('signed');
      const printed = execFileSync(process.execPath, [...MESHLET, 'sign', '--key', k, '--print-pubkey']).toString();
      expect(printed).toBe(pub);
    }
  });

  it('meshlet sign refuses a config without a version, and a public key', async () => {
    const p = await makePod();
    cleanups.push(() => cleanupPod(p));
    const k = keys();
    writeFileSync(path.join(p.dir, 'k.pem'), k.privatePem);
    writeFileSync(path.join(p.dir, 'k.pub'), k.publicPem);
    const run = (args: string[]): { status: number; stderr: string } => {
      try {
        execFileSync(process.execPath, [...MESHLET, 'sign', ...args], { stdio: 'pipe' });
        return { status: 0, stderr: '' };
      } catch (err) {
        const e = err as { status: number; stderr: Buffer };
        return { status: e.status, stderr: e.stderr.toString() };
      }
    };
    expect(run(['--key', path.join(p.dir, 'k.pem'), p.configPath]).stderr).toMatch(/needs a top-level integer "version:"/);
    expect(run(['--key', path.join(p.dir, 'k.pub'), p.configPath]).stderr).toMatch(/holds no private key/);
  });

  it('a public key that is really a private key, or of another type, is refused without echoing it', () => {
    const k = keys();
    let err: unknown;
    try {
      loadConfig('/nonexistent.yaml', { MESHLET_CONFIG_PUBKEY: k.privatePem });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigInvalidError);
    expect((err as Error).message).toMatch(/holds a PRIVATE key/);
    expect((err as Error).message).not.toContain(k.privatePem.split('\n')[1]);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => loadConfig('/nonexistent.yaml', { MESHLET_CONFIG_PUBKEY: rsa })).toThrow(/must be an Ed25519 or ECDSA P-256 key/);
  });
});

describe('MESHLET_CONFIG: the YAML in the environment', () => {
  it('is loaded as covered by the policy, and never watched', () => {
    const loaded = loadConfig(undefined, { MESHLET_CONFIG: 'ingress: { mode: disabled }\n' });
    expect(loaded.source).toBe('environment (MESHLET_CONFIG)');
    expect(loaded.trust).toMatchObject({ mode: 'policy-env', reloads: 'refused' });
    expect(loaded.file).toBeUndefined();
    expect(loaded.config.ingress.mode).toBe('disabled');
  });

  it('refuses to be mixed with --config, Contrast variables or a file pin, and refuses an empty value', () => {
    expect(() => loadConfig('/etc/x.yaml', { MESHLET_CONFIG: 'ingress: {}' })).toThrow(/together with --config \/etc\/x\.yaml/);
    expect(() => loadConfig(undefined, { MESHLET_CONFIG: 'ingress: {}', CONTRAST_ADMIN_PORT: '9901' })).toThrow(/CONTRAST_\*/);
    expect(() => loadConfig(undefined, { MESHLET_CONFIG: 'ingress: {}', MESHLET_CONFIG_SHA256: 'ab'.repeat(32) })).toThrow(/MESHLET_CONFIG_SHA256/);
    expect(() => loadConfig(undefined, { MESHLET_CONFIG: ' ' })).toThrow(/set but empty/);
  });
});
