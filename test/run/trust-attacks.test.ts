// Attacks on the trusted config, as a review of 2026-12-02 made them: by whoever
// writes the config volume (in a confidential pod, the untrusted host: any
// bytes, symlinks, timing, and every config ever signed), and by a compromised
// Envoy (uid 1337) that can fill the runtime volume the replay-protection state
// lives on. Each test failed on the code before the fix.
import { describe, expect, it } from 'vitest';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { stringify } from 'yaml';
import { createRootLogger } from '../../src/log.js';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../../src/config/load.js';
import { sha256Hex, signConfig } from '../../src/config/trust.js';
import { Meshlet } from '../../src/run/service.js';
import { STATE_RETRY_MS } from '../../src/run/watch.js';
import { cleanupPod, makePod, until, MESHLET, type Pod } from '../helpers/meshlet.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ConfigVolume } from '../helpers/config-volume.js';

const cleanups = cleanupAfterEach();

const pair = generateKeyPairSync('ed25519');
const privatePem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const sign = (t: string | Buffer): string => `${signConfig(privatePem, Buffer.from(t)).signature}\n`;

/** The pod's config with a version and the given inbound policy (what an update changes). */
function text(p: Pod, version: number, policy: 'mtls' | 'tls'): string {
  return stringify({ version, ...p.config, ingress: { mode: 'mapped', ports: [{ name: 'app', port: p.base + 50, mappedPort: p.base + 51, policy }] } });
}

async function pod(): Promise<{ p: Pod; vol: ConfigVolume; state: string }> {
  const p = await makePod();
  cleanups.push(() => cleanupPod(p));
  const vol = new ConfigVolume(path.join(p.dir, 'cfg'));
  return { p, vol, state: path.join(p.dir, 'run', 'state', 'config-state.json') };
}

interface View {
  trust: { mode: string; version?: number };
  reloads: { ok: boolean; error?: string }[];
}

/** meshlet run without Envoy, on a loaded config; its log lines go to a file. */
async function serve(p: Pod, loaded: ReturnType<typeof loadConfig>): Promise<{ meshlet: Meshlet; log: () => string }> {
  const logFile = path.join(p.dir, 'meshlet.log');
  const fd = openSync(logFile, 'a');
  const meshlet = new Meshlet({ loaded, logger: createRootLogger('debug', fd), noEnvoy: true, skipIptablesCheck: true, watch: { pollMs: 100, settleMs: 300 } });
  cleanups.push(async () => {
    await meshlet.stop(0);
    closeSync(fd);
  });
  await meshlet.start();
  return { meshlet, log: () => readFileSync(logFile, 'utf8') };
}

describe('the trusted config against whoever writes its volume', () => {
  it('a signed update below MESHLET_CONFIG_MIN_VERSION is refused while running too, not only at start', async () => {
    const { p, vol, state } = await pod();
    vol.publish(text(p, 1, 'mtls'));
    const env = {
      MESHLET_CONFIG_SHA256: sha256Hex(text(p, 1, 'mtls')),
      MESHLET_CONFIG_PUBKEY: publicPem,
      MESHLET_CONFIG_MIN_VERSION: '5',
      MESHLET_CONFIG_STATE: state,
    };
    const gate = loadConfig(vol.file, env).gate;
    const revoked = text(p, 3, 'tls');
    const refused = gate?.admit(revoked, sign(revoked));
    expect(refused).toMatchObject({ kind: 'refuse', reason: 'rollback' });
    expect(refused?.kind === 'refuse' && refused.error).toMatch(/below MESHLET_CONFIG_MIN_VERSION \(5\)/);
    const current = text(p, 6, 'mtls');
    expect(gate?.admit(current, sign(current))).toMatchObject({ kind: 'apply', version: 6 });
  });

  it('with a hash and a key pinned, a new pod starts on the pinned config, not on an older signed one the host picks', async () => {
    const { p, vol, state } = await pod();
    const old = text(p, 1, 'tls');
    vol.publish(old, sign(old));
    const env = { MESHLET_CONFIG_SHA256: sha256Hex(text(p, 5, 'mtls')), MESHLET_CONFIG_PUBKEY: publicPem, MESHLET_CONFIG_STATE: state };
    expect(() => loadConfig(vol.file, env)).toThrow(
      /is signed but not the pinned config .*set MESHLET_CONFIG_MIN_VERSION \(1 or more\) to the lowest signed version/,
    );
    // A minimum of 0 is no floor, so it opens nothing either.
    expect(() => loadConfig(vol.file, { ...env, MESHLET_CONFIG_MIN_VERSION: '0' })).toThrow(/is signed but not the pinned config/);
    // The operator's explicit floor lets a new pod start on a signed config at or above it, and no lower.
    expect(() => loadConfig(vol.file, { ...env, MESHLET_CONFIG_MIN_VERSION: '2' })).toThrow(/signed version 1 is below the lowest accepted \(2/);
    expect(loadConfig(vol.file, { ...env, MESHLET_CONFIG_MIN_VERSION: '1' }).trust).toMatchObject({ mode: 'signed', version: 1 });
    // A key alone has no pinned config to fall back on: the start says what a new pod accepts.
    for (const min of [{}, { MESHLET_CONFIG_MIN_VERSION: '0' }]) {
      const keyOnly = loadConfig(vol.file, { MESHLET_CONFIG_PUBKEY: publicPem, MESHLET_CONFIG_STATE: state, ...min });
      expect(keyOnly.warnings.join('\n')).toMatch(/a new pod starts on any config ever signed with this key; set MESHLET_CONFIG_MIN_VERSION/);
    }
  });

  it('pins with no --config require the default file: never the built-in defaults instead', () => {
    expect(existsSync(DEFAULT_CONFIG_PATH), `this test needs a machine without ${DEFAULT_CONFIG_PATH}, as a fresh one is`).toBe(false);
    expect(() => loadConfig(undefined, { MESHLET_CONFIG_SHA256: 'ab'.repeat(32) })).toThrow(/file not found; the config is pinned, so it must exist at start/);
    // Pins and Contrast's variables, both in the policy: which one was meant is not guessed.
    expect(() => loadConfig(undefined, { MESHLET_CONFIG_PUBKEY: publicPem, CONTRAST_INGRESS_PROXY_CONFIG: 'web#8080#false' })).toThrow(
      /pin a config file, but none is given and Contrast's variables are set: give the config one way only/,
    );
    // Without pins, the defaults stay what a pod without a config gets.
    expect(loadConfig(undefined, {}).trust.mode).toBe('defaults');
  });

  it("an unsigned file is not parsed before its signature is checked: the host's bytes never reach the YAML parser", async () => {
    const { vol, state } = await pod();
    // Not even YAML: had it been parsed first, the error would be about YAML or the version.
    vol.publish('{{{ [[[ version: 99');
    expect(() => loadConfig(vol.file, { MESHLET_CONFIG_PUBKEY: publicPem, MESHLET_CONFIG_STATE: state })).toThrow(
      /has no valid signature in .*\(no signature file\)/,
    );
  });

  it('a config that is not UTF-8 is refused at start and by meshlet sign, instead of verifying at start and failing once watched', async () => {
    const { p, vol, state } = await pod();
    const latin1 = Buffer.concat([Buffer.from('# caf'), Buffer.from([0xe9]), Buffer.from(`\n${text(p, 2, 'mtls')}`)]);
    vol.publish(latin1, sign(latin1));
    expect(() => loadConfig(vol.file, { MESHLET_CONFIG_PUBKEY: publicPem, MESHLET_CONFIG_MIN_VERSION: '1', MESHLET_CONFIG_STATE: state })).toThrow(
      /is not UTF-8 text; save the config as UTF-8/,
    );
    const keyFile = path.join(p.dir, 'signing-key.pem');
    writeFileSync(keyFile, privatePem, { mode: 0o600 });
    const raw = path.join(p.dir, 'latin1.yaml');
    writeFileSync(raw, latin1);
    let stderr = '';
    try {
      execFileSync(process.execPath, [...MESHLET, 'sign', '--key', keyFile, raw], { encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      stderr = String((err as { stderr?: string }).stderr);
    }
    expect(stderr).toMatch(/latin1\.yaml is not UTF-8 text; save it as UTF-8, then sign it/);
    expect(existsSync(`${raw}.sig`)).toBe(false);
  });

  it('a config symlinked out of its directory is not read, so no error can quote the file it leads to', async () => {
    const { p } = await pod();
    const secret = path.join(p.dir, 'seed');
    const value = 'f00d'.repeat(16);
    writeFileSync(secret, value, { mode: 0o400 });
    const dir = path.join(p.dir, 'mounted');
    mkdirSync(dir);
    symlinkSync(secret, path.join(dir, 'config.yaml'));
    let message = '';
    try {
      loadConfig(path.join(dir, 'config.yaml'), {});
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/leads to .*\/seed, outside .*\/mounted; a config file is read only inside the directory it is named in/);
    expect(message).not.toContain(value.slice(0, 16));
    // Inside the directory, a document that is no mapping is described, never quoted; a private key is never quoted either.
    rmSync(path.join(dir, 'config.yaml'));
    writeFileSync(path.join(dir, 'config.yaml'), value);
    expect(() => loadConfig(path.join(dir, 'config.yaml'), {})).toThrow(/\(root\): .*\(got a string of 64 characters\)/);
    writeFileSync(path.join(dir, 'config.yaml'), stringify({ ...p.config, tls: { keyExchange: privatePem } }));
    let keyMessage = '';
    try {
      loadConfig(path.join(dir, 'config.yaml'), {});
    } catch (err) {
      keyMessage = (err as Error).message;
    }
    expect(keyMessage).toMatch(/tls\.keyExchange: .*\(got "\(a private key, not shown\)"\)/);
    expect(keyMessage).not.toContain(privatePem.split('\n')[1]?.slice(0, 20));
  });

  it('while running, a config swapped for a symlink out of its directory is not read; the config in use stays', async () => {
    const { p, vol } = await pod();
    vol.publish(text(p, 1, 'tls'));
    const { meshlet, log } = await serve(p, loadConfig(vol.file, {}));
    const secret = path.join(p.dir, 'seed');
    writeFileSync(secret, 'beef'.repeat(16), { mode: 0o400 });
    // The host swaps the key's symlink for one that leads out of the volume.
    symlinkSync(secret, path.join(vol.dir, 'config.yaml.tmp'));
    renameSync(path.join(vol.dir, 'config.yaml.tmp'), vol.file);
    const view = await until('the swap refused', () => {
      const v = meshlet.xdsView() as View;
      return v.reloads.some((r) => !r.ok) ? v : undefined;
    });
    expect(view.reloads.at(-1)?.error).toMatch(/config\.yaml: leads to .*\/seed, outside .*\/cfg; .*; keeping the last good config/);
    expect(log()).not.toContain('beefbeef');
  });

  it('a signed update whose version cannot be recorded (the runtime volume is full) is not served, is counted, and is taken once it can be', async () => {
    const { p, vol, state } = await pod();
    vol.publish(text(p, 1, 'tls'));
    const env = { MESHLET_CONFIG_SHA256: sha256Hex(text(p, 1, 'tls')), MESHLET_CONFIG_PUBKEY: publicPem, MESHLET_CONFIG_STATE: state };
    const loaded = loadConfig(vol.file, env);
    const { meshlet, log } = await serve(p, loaded);
    expect((meshlet.xdsView() as View).trust).toMatchObject({ mode: 'pinned', version: 1 });
    // A full volume, as uid 1337 can make it by filling its own directory on it: the state cannot be written (a file
    // where its directory should be fails the same way, and needs no tmpfs to set up).
    const stateDir = path.dirname(state);
    rmSync(stateDir, { recursive: true });
    writeFileSync(stateDir, '');
    // Retries within the test's time (1 s doubling to 30 s in a pod).
    const waits = { ...STATE_RETRY_MS };
    Object.assign(STATE_RETRY_MS, { first: 50, most: 100 });
    cleanups.push(() => void Object.assign(STATE_RETRY_MS, waits));
    const v2 = text(p, 2, 'mtls');
    vol.publish(v2, sign(v2));
    const refused = await until('the update refused', () => {
      const v = meshlet.xdsView() as View;
      return v.reloads.some((r) => !r.ok) ? v : undefined;
    });
    expect(refused.reloads.find((r) => !r.ok)?.error).toMatch(
      /signed version 2 is not applied: its version could not be recorded in the replay-protection state/,
    );
    expect(refused.trust).toMatchObject({ mode: 'pinned', version: 1 });
    expect(log()).toMatch(/config update not applied: its version cannot be recorded/);
    expect(loaded.gate?.refused.get('state')).toBe(1);
    expect(meshlet.config.ingress.mode === 'mapped' && meshlet.config.ingress.ports[0]?.policy).toBe('tls');
    // Tried again while the volume stays full: at debug level only, not one more error, record or count each time.
    await until('three more tries', () => (log().split('config update retried: its version still cannot be recorded').length > 3 ? true : undefined));
    expect(log().split('config update not applied: its version cannot be recorded').length).toBe(2);
    // Space again: the same update is taken without being published again, and becomes the floor.
    rmSync(stateDir);
    const applied = await until('the update applied', () => {
      const v = meshlet.xdsView() as View;
      return v.trust.version === 2 ? v : undefined;
    });
    expect(applied.trust.mode).toBe('signed');
    expect(meshlet.config.ingress.mode === 'mapped' && meshlet.config.ingress.ports[0]?.policy).toBe('mtls');
    expect(JSON.parse(readFileSync(state, 'utf8'))).toMatchObject({ version: 2, sha256: sha256Hex(v2) });
    // Recorded and counted once for the update, however often it was tried.
    expect(applied.reloads.filter((r) => !r.ok)).toHaveLength(1);
    expect(loaded.gate?.refused.get('state')).toBe(1);
  });

  it('a ConfigMap key given a sub-path (below a folder that is a link into ..data) is still read, and reloaded after a swap', async () => {
    const { p } = await pod();
    // items: [{ key: config.yaml, path: a/b/config.yaml }]: the kubelet links a -> ..data/a; b is a real folder in there.
    const dir = path.join(p.dir, 'nested');
    const publish = (n: number, body: string): void => {
      mkdirSync(path.join(dir, `..v${n}`, 'a', 'b'), { recursive: true });
      writeFileSync(path.join(dir, `..v${n}`, 'a', 'b', 'config.yaml'), body);
      symlinkSync(`..v${n}`, path.join(dir, '..data_tmp'));
      renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
      if (n === 1) symlinkSync('..data/a', path.join(dir, 'a'));
    };
    publish(1, text(p, 1, 'tls'));
    const file = path.join(dir, 'a', 'b', 'config.yaml');
    const { meshlet } = await serve(p, loadConfig(file, {}));
    publish(2, text(p, 2, 'mtls'));
    await until('the update applied', () =>
      meshlet.config.ingress.mode === 'mapped' && meshlet.config.ingress.ports[0]?.policy === 'mtls' ? true : undefined,
    );
    expect((meshlet.xdsView() as View).reloads.every((r) => r.ok)).toBe(true);
  });

  it('an update published while meshlet starts (after the config was read, before the watcher) is still applied', async () => {
    const { p, vol } = await pod();
    vol.publish(text(p, 1, 'tls'));
    const loaded = loadConfig(vol.file, {});
    vol.publish(text(p, 2, 'mtls'));
    const { meshlet } = await serve(p, loaded);
    await until('the update applied', () =>
      meshlet.config.ingress.mode === 'mapped' && meshlet.config.ingress.ports[0]?.policy === 'mtls' ? true : undefined,
    );
    expect((meshlet.xdsView() as View).reloads.at(-1)?.ok).toBe(true);
  });
});
