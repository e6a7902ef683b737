// Where the mesh config came from and what vouches for it.
//
// In a confidential pod the host and the Kubernetes API server are not
// trusted; only what the pod's attested policy pins is: the image, the
// command, the args and the environment. A ConfigMap volume is none of those,
// so a config file on one is trusted only when
//  - its SHA-256 is pinned (MESHLET_CONFIG_SHA256 or --config-sha256), or
//  - it is signed by a key whose public half is pinned (MESHLET_CONFIG_PUBKEY),
//    and its top-level `version:` is not lower than any version this pod has
//    already run (a signed config cannot be replayed once superseded).
// The YAML can also sit in the environment itself (MESHLET_CONFIG), where the
// policy covers it byte for byte.
//
// Signature format: `<config>.sig` next to the file, holding the base64 of a
// detached signature over the file's exact bytes: Ed25519, or ECDSA P-256 over
// SHA-256 (DER, as `openssl dgst -sha256 -sign` writes it, or raw r||s).
import type * as Crypto from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { InputFileError, readInputBytes } from '../fs/read-limited.js';
import { PUBLIC_MODE, writeFileAtomic } from '../fs/safe-write.js';
import { fastYaml } from './yaml-fast.js';
import { yamlLibrary } from './yaml-lib.js';
import { ConfigInvalidError, type ConfigError } from './errors.js';
// node:crypto on first use (crypto() below), not at load: `meshlet run` loads this module before it spawns Envoy, and a
// config that is not pinned needs no hash, key or signature.
const crypto = (): typeof Crypto => process.getBuiltinModule('node:crypto');
const { mkdirSync, statSync } = process.getBuiltinModule('node:fs');
const { isUtf8 } = process.getBuiltinModule('node:buffer');
const path = process.getBuiltinModule('node:path');

export const TRUST_ENV = {
  /** The whole YAML config; the pod's policy covers it. */
  config: 'MESHLET_CONFIG',
  /** Hex SHA-256 the config file must have at start. */
  sha256: 'MESHLET_CONFIG_SHA256',
  /** PEM public key (Ed25519 or ECDSA P-256) that signs config updates. */
  pubkey: 'MESHLET_CONFIG_PUBKEY',
  /** Lowest signed `version:` a new pod accepts (revokes older signed configs). */
  minVersion: 'MESHLET_CONFIG_MIN_VERSION',
  /** Where `meshlet run` keeps the highest version it applied in this pod. */
  state: 'MESHLET_CONFIG_STATE',
} as const;

export const DEFAULT_STATE_PATH = '/var/run/meshlet/config-state.json';
/** A config is a few KiB; a larger file is a mistake or an attack on memory. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_SIG_BYTES = 4096;

export type TrustMode = 'policy-env' | 'pinned' | 'signed' | 'image' | 'volume' | 'defaults';

export interface ConfigTrust {
  /**
   * policy-env: the YAML (or Contrast's variables) is in the pod's environment;
   * pinned: the file's SHA-256 matches the pin; signed: the file carries a
   * valid signature by the pinned key; image: an unpinned file on the
   * container's root filesystem; volume: an unpinned file on a mounted volume
   * (a ConfigMap, say), which the pod's policy does not cover;
   * defaults: no config at all.
   */
  mode: TrustMode;
  /** For people: what covers the config and what a change takes. */
  detail: string;
  /** SHA-256 of the bytes in use, for a file. */
  sha256?: string;
  pinnedSha256?: string;
  /** The config's `version:`, when it has one. */
  version?: number;
  /** SHA-256 of the pinned public key (SPKI DER), when signed updates are accepted. */
  signingKey?: string;
  /** What a change of the file does while running. */
  reloads: 'applied' | 'signed-only' | 'refused';
}

export interface Pins {
  sha256?: string;
  key?: KeyObject;
  keyFingerprint?: string;
  /** MESHLET_CONFIG_MIN_VERSION, 0 when unset; 1 or more also says which signed versions a new pod may start on. */
  minVersion: number;
  statePath: string;
}

type Env = Readonly<Record<string, string | undefined>>;

export function sha256Hex(data: Buffer | string): string {
  return crypto().createHash('sha256').update(data).digest('hex');
}

function invalid(source: string, errors: ConfigError[]): never {
  throw new ConfigInvalidError(source, errors);
}

/** Accepts a public key in PEM; refuses a private one, so it never lands in a pod spec. */
export function parsePublicKey(pem: string, where: string): KeyObject {
  if (/PRIVATE KEY/.test(pem)) {
    invalid(where, [
      {
        path: where,
        value: '(not shown)',
        rule: 'holds a PRIVATE key; pin only the public half (openssl pkey -in key.pem -pubout, or meshlet sign --key key.pem --print-pubkey)',
      },
    ]);
  }
  let key: KeyObject;
  try {
    key = crypto().createPublicKey(pem);
  } catch (err) {
    return invalid(where, [
      { path: where, value: pem.slice(0, 40), rule: `not a PEM public key (${(err as Error).message}); expected "-----BEGIN PUBLIC KEY-----"` },
    ]);
  }
  checkKeyType(key, where);
  return key;
}

function checkKeyType(key: KeyObject, where: string): void {
  const ok = key.asymmetricKeyType === 'ed25519' || (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1');
  if (!ok) {
    invalid(where, [
      {
        path: where,
        value: `${key.asymmetricKeyType ?? 'unknown'} ${key.asymmetricKeyDetails?.namedCurve ?? ''}`.trim(),
        rule: 'must be an Ed25519 or ECDSA P-256 key',
      },
    ]);
  }
}

export function keyFingerprint(key: KeyObject): string {
  const pub = key.type === 'private' ? crypto().createPublicKey(key) : key;
  return sha256Hex(pub.export({ type: 'spki', format: 'der' }));
}

/** The pins in the environment (the CLI maps --config-sha256 onto MESHLET_CONFIG_SHA256). */
export function readPins(env: Env): Pins {
  const errors: ConfigError[] = [];
  const pins: Pins = { minVersion: 0, statePath: env[TRUST_ENV.state] || DEFAULT_STATE_PATH };
  const sha = env[TRUST_ENV.sha256];
  if (sha !== undefined) {
    const s = sha.trim().toLowerCase();
    if (/^[0-9a-f]{64}$/.test(s)) pins.sha256 = s;
    else errors.push({ path: TRUST_ENV.sha256, value: sha, rule: 'must be 64 hex digits, the output of `sha256sum config.yaml`' });
  }
  const pem = env[TRUST_ENV.pubkey];
  if (pem !== undefined) {
    pins.key = parsePublicKey(pem, TRUST_ENV.pubkey);
    pins.keyFingerprint = keyFingerprint(pins.key);
  }
  const min = env[TRUST_ENV.minVersion];
  if (min !== undefined) {
    if (/^[0-9]{1,15}$/.test(min.trim())) pins.minVersion = Number(min.trim());
    else errors.push({ path: TRUST_ENV.minVersion, value: min, rule: 'must be a non-negative integer' });
    if (!pins.key) errors.push({ path: TRUST_ENV.minVersion, value: min, rule: `only means something with ${TRUST_ENV.pubkey} set` });
  }
  if (errors.length > 0) invalid('environment', errors);
  return pins;
}

export function hasPins(p: Pins): boolean {
  return p.sha256 !== undefined || p.key !== undefined;
}

export function sigPath(file: string): string {
  return `${file}.sig`;
}

/**
 * Reads a regular file of bounded size. Symlinks are followed on purpose: a
 * ConfigMap mount presents every key as a symlink into `..data/`. With
 * `within`, the file read must lie inside that directory (read-limited.ts).
 */
export function readBounded(file: string, max: number, what: string, within?: string): Buffer | undefined {
  try {
    return readInputBytes(file, max, within);
  } catch (err) {
    if (!(err instanceof InputFileError)) throw err;
    if (err.code === 'ENOENT') return undefined;
    return invalid(file, [{ path: '(file)', value: file, rule: `${what}: ${err.message}` }]);
  }
}

/** Checks a detached signature (base64 text) over `data`. Returns why it fails, or undefined. */
export function checkSignature(key: KeyObject, data: Buffer, sigText: string | undefined): string | undefined {
  if (sigText === undefined) return 'no signature file';
  const compact = sigText.replace(/\s+/g, '');
  if (compact === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return 'the signature file is not base64';
  const sig = Buffer.from(compact, 'base64');
  try {
    const ok =
      key.asymmetricKeyType === 'ed25519'
        ? crypto().verify(null, data, key, sig)
        : crypto().verify('sha256', data, { key, dsaEncoding: sig.length === 64 ? 'ieee-p1363' : 'der' }, sig);
    return ok ? undefined : 'the signature does not verify with the pinned key (signed by another key, or the file changed after signing)';
  } catch (err) {
    return `the signature is malformed (${(err as Error).message})`;
  }
}

/** Signs `data` with a private key in PEM; returns base64. */
export function signConfig(privatePem: string, data: Buffer): { signature: string; key: KeyObject } {
  const key = crypto().createPrivateKey(privatePem);
  checkKeyType(key, 'signing key');
  const sig = key.asymmetricKeyType === 'ed25519' ? crypto().sign(null, data, key) : crypto().sign('sha256', data, { key, dsaEncoding: 'der' });
  return { signature: sig.toString('base64'), key };
}

/** The top-level `version:` of a YAML text: a number, undefined when absent, or an error text. */
export function versionOf(text: string): number | undefined | { error: string } {
  let raw: unknown;
  try {
    // The quick reader first, so a signed update does not pull the full parser into memory for good.
    const quick = fastYaml(text);
    raw = quick !== undefined ? quick : yamlLibrary().parse(text);
  } catch (err) {
    return { error: `not valid YAML (${(err as Error).message.split('\n')[0] ?? ''})` };
  }
  if (raw === null || typeof raw !== 'object' || !('version' in raw)) return undefined;
  const v = raw.version;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return { error: `version must be a non-negative integer, not ${JSON.stringify(v)}` };
  return v;
}

interface PodState {
  version: number;
  sha256: string;
}

/**
 * The highest signed version this pod has run. It lives in the pod's runtime
 * volume (guest memory under Contrast), so it survives a sidecar restart but
 * not the pod. Trusted only when we own it and nobody else can write it.
 */
export function readState(file: string): PodState | undefined {
  let st;
  try {
    st = statSync(file);
  } catch {
    return undefined;
  }
  const me = process.geteuid?.();
  if ((me !== undefined && st.uid !== me) || (st.mode & 0o022) !== 0 || !st.isFile()) {
    invalid(file, [
      { path: '(file)', value: file, rule: `replay-protection state is not owned by uid ${me ?? '?'} or is writable by others; remove it and roll the pod` },
    ]);
  }
  const buf = readBounded(file, 4096, 'replay-protection state');
  try {
    const s = JSON.parse(buf?.toString('utf8') ?? '') as Partial<PodState>;
    if (typeof s.version === 'number' && typeof s.sha256 === 'string') return { version: s.version, sha256: s.sha256 };
  } catch {
    /* fall through */
  }
  return invalid(file, [{ path: '(file)', value: file, rule: 'replay-protection state is unreadable; remove it and roll the pod' }]);
}

/** Writes the state with the shared atomic writer: a fresh temp name (O_EXCL, O_NOFOLLOW), then renamed over. */
export function writeState(file: string, state: PodState): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  writeFileAtomic(file, `${JSON.stringify(state)}\n`, PUBLIC_MODE);
}

export type Admission =
  { kind: 'apply'; text: string; version: number; sha256: string } | { kind: 'same' } | { kind: 'refuse'; reason: RefusalReason; error: string };
export type RefusalReason = 'pinned' | 'unsigned' | 'bad-signature' | 'no-version' | 'rollback' | 'state';

/**
 * Decides, for a pinned config file, which updates may be applied while
 * running. Everything it refuses is counted by reason.
 */
export class ConfigGate {
  readonly refused = new Map<RefusalReason, number>();
  private current: { sha256: string; version: number | undefined; mode: TrustMode };

  constructor(
    readonly file: string,
    private readonly pins: Pins,
    start: { sha256: string; version: number | undefined; mode: TrustMode },
  ) {
    this.current = { ...start };
  }

  get sigFile(): string {
    return sigPath(this.file);
  }

  trust(): ConfigTrust {
    return describeFileTrust(this.current.mode, this.pins, this.current.sha256, this.current.version);
  }

  admit(text: string, sigText: string | undefined): Admission {
    const bytes = Buffer.from(text, 'utf8');
    const sha = sha256Hex(bytes);
    if (sha === this.current.sha256) return { kind: 'same' };
    const key = this.pins.key;
    if (!key) {
      return this.refuse(
        'pinned',
        `${this.file} changed (SHA-256 ${sha}), but the config is pinned to ${this.current.sha256} and no ${TRUST_ENV.pubkey} accepts signed updates; to ` +
          `change it, change the pin, which rolls the pod`,
      );
    }
    const bad = checkSignature(key, bytes, sigText);
    if (bad)
      return this.refuse(
        sigText === undefined ? 'unsigned' : 'bad-signature',
        `${this.file} changed (SHA-256 ${sha}) without a valid signature in ${this.sigFile}: ${bad}` +
          // The watcher hands over text: bytes that are not UTF-8 came through as U+FFFD, and no longer match what was signed.
          (text.includes('\ufffd') ? '; the config must be UTF-8 text, which this one may not be' : ''),
      );
    const v = versionOf(text);
    if (v === undefined || typeof v === 'object')
      return this.refuse(
        'no-version',
        `${this.file}: a signed update needs a top-level integer "version:" higher than ${this.current.version ?? 0}${v ? `; ${v.error}` : ''}`,
      );
    const floor = this.current.version ?? -1;
    if (v <= floor)
      return this.refuse(
        'rollback',
        `${this.file}: signed version ${v} is not higher than the version in use (${floor}); an older or replayed signed config is not accepted`,
      );
    // The pod may run a pinned config below the minimum (the pin is the policy's own word), but a signed update below
    // it is one the operator revoked.
    if (v < this.pins.minVersion)
      return this.refuse(
        'rollback',
        `${this.file}: signed version ${v} is below ${TRUST_ENV.minVersion} (${this.pins.minVersion}); a revoked signed config is not accepted`,
      );
    return { kind: 'apply', text, version: v, sha256: sha };
  }

  /**
   * Takes an admitted update that is about to be served: it becomes the floor,
   * here and across sidecar restarts. The state file is written first, so an
   * update whose floor cannot be recorded is never served (a later restart
   * would accept a rollback below it). Returns why not (the caller counts it,
   * once per update); the config in use stays.
   */
  commit(a: { version: number; sha256: string }): string | undefined {
    if (this.pins.key) {
      try {
        writeState(this.pins.statePath, { version: a.version, sha256: a.sha256 });
      } catch (err) {
        return (
          `${this.file}: signed version ${a.version} is not applied: its version could not be recorded in the replay-protection state ` +
          `${this.pins.statePath} (${(err as Error).message}); the config in use stays, and the update is tried again until the state can be written`
        );
      }
    }
    this.current = { sha256: a.sha256, version: a.version, mode: 'signed' };
    return undefined;
  }

  /** Records the start config's version, so a sidecar restart cannot go below it. */
  persist(): void {
    if (this.pins.key && this.current.version !== undefined) writeState(this.pins.statePath, { version: this.current.version, sha256: this.current.sha256 });
  }

  /** Counts a refusal the gate did not decide itself (an update whose state could not be written). */
  count(reason: RefusalReason): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }

  private refuse(reason: RefusalReason, error: string): Admission {
    this.count(reason);
    return { kind: 'refuse', reason, error };
  }
}

export function describeFileTrust(mode: TrustMode, pins: Pins, sha256: string, version: number | undefined): ConfigTrust {
  const t: ConfigTrust = { mode, detail: '', sha256, reloads: pins.key ? 'signed-only' : 'refused', ...(version !== undefined ? { version } : {}) };
  if (pins.sha256) t.pinnedSha256 = pins.sha256;
  if (pins.keyFingerprint) t.signingKey = pins.keyFingerprint;
  const updates = pins.key
    ? `updates must be signed by the pinned key (sha256 ${pins.keyFingerprint?.slice(0, 16) ?? ''}...) and carry a higher version`
    : 'changes to the file are refused';
  t.detail =
    mode === 'pinned'
      ? `SHA-256 matches the pin in the pod's policy; ${updates}`
      : `signed by the key pinned in ${TRUST_ENV.pubkey}, version ${version ?? '?'}; ${updates}`;
  return t;
}

/**
 * Start-up check of a config file under a pin. Accepts the file when its
 * SHA-256 is the pinned one, or when a key is pinned and the file is signed
 * with a version at or above every floor (the pinned minimum, and whatever this
 * pod already ran). With a hash pinned too, a new pod (no replay-protection
 * state yet) starts on the pinned config, not on a signed one, unless
 * MESHLET_CONFIG_MIN_VERSION says which signed versions a new pod may start
 * on: otherwise whoever controls the volume could start every new pod on the
 * oldest config ever signed. Otherwise refuses, naming both hashes. Nothing
 * of the file is parsed before its bytes are shown to be the pinned or a
 * signed ones: the YAML parser is not fed what the host wrote.
 */
export function admitPinnedFile(file: string, pins: Pins, within: string | undefined): { text: string; gate: ConfigGate; trust: ConfigTrust } {
  // No directory to read it inside: the file is not there (load.ts configDir); nothing is read.
  const bytes = within === undefined ? undefined : readBounded(file, MAX_CONFIG_BYTES, 'the config file', within);
  if (!bytes) invalid(file, [{ path: '(file)', value: file, rule: 'file not found; the config is pinned, so it must exist at start' }]);
  const sha = sha256Hex(bytes);
  const state = pins.key ? readState(pins.statePath) : undefined;
  let mode: TrustMode;
  if (pins.sha256 !== undefined && sha === pins.sha256) {
    mode = 'pinned';
  } else {
    const pinned = pins.sha256 ? `, but ${TRUST_ENV.sha256} (or --config-sha256) pins ${pins.sha256}` : '';
    if (!pins.key)
      invalid(file, [
        {
          path: '(file)',
          value: sha,
          rule:
            `SHA-256 of the file is ${sha}${pinned}; this is not the config the pod's policy covers: restore the file, or put the new hash in the pod ` +
            `spec (which rolls the pod)`,
        },
      ]);
    const sigText = readBounded(sigPath(file), MAX_SIG_BYTES, 'the signature file', within)?.toString('utf8');
    const bad = checkSignature(pins.key, bytes, sigText);
    if (bad)
      invalid(file, [
        { path: '(file)', value: sha, rule: `SHA-256 of the file is ${sha}${pinned}, and it has no valid signature in ${sigPath(file)} (${bad})` },
      ]);
    if (pins.sha256 !== undefined && !state && pins.minVersion === 0) {
      invalid(file, [
        {
          path: '(file)',
          value: sha,
          rule:
            `is signed but not the pinned config (${pins.sha256.slice(0, 12)}...), and a new pod starts on the pinned one: put the file's hash in ` +
            `the pod spec (which rolls the pods), or set ${TRUST_ENV.minVersion} (1 or more) to the lowest signed version a new pod may start on`,
        },
      ]);
    }
    mode = 'signed';
  }
  // The bytes are the pinned or a signed ones from here on.
  if (!isUtf8(bytes)) {
    invalid(file, [{ path: '(file)', value: sha, rule: 'is not UTF-8 text; save the config as UTF-8 (and sign it again)' }]);
  }
  const text = bytes.toString('utf8');
  const version = versionOf(text);
  if (typeof version === 'object') invalid(file, [{ path: 'version', value: undefined, rule: version.error }]);
  if (pins.key && version === undefined) {
    invalid(file, [
      { path: 'version', value: undefined, rule: `required when ${TRUST_ENV.pubkey} is set: a top-level integer that every signed update raises` },
    ]);
  }
  if (mode === 'pinned') {
    if (state && version !== undefined && state.version > version) {
      invalid(file, [
        {
          path: 'version',
          value: version,
          rule:
            `this pod already ran signed version ${state.version}; going back to the pinned config (version ${version}) is refused; roll the pod to ` +
            `start over`,
        },
      ]);
    }
  } else {
    const v = version ?? 0;
    const floor = Math.max(pins.minVersion, state?.version ?? 0);
    if (v < floor || (state && v === state.version && sha !== state.sha256)) {
      invalid(file, [
        {
          path: 'version',
          value: v,
          rule:
            `signed version ${v} is below the lowest accepted (${floor}: ${TRUST_ENV.minVersion} or what this pod already ran); an older signed config ` +
            `is not accepted`,
        },
      ]);
    }
  }
  const gate = new ConfigGate(file, pins, { sha256: sha, version, mode });
  return { text, gate, trust: gate.trust() };
}

/** An unpinned file: on the image's root filesystem, or on a mounted volume. */
export function unpinnedFileTrust(file: string): ConfigTrust {
  let onRoot = false;
  try {
    onRoot = statSync(file).dev === statSync('/').dev;
  } catch {
    /* a missing file is reported by the loader */
  }
  return onRoot
    ? { mode: 'image', detail: "on the container's root filesystem, part of the image the pod's policy pins; edits are applied", reloads: 'applied' }
    : {
        mode: 'volume',
        detail:
          `on a mounted volume (a ConfigMap, say), which the pod's policy does not cover: whoever controls the API server can rewrite it; pin it with ` +
          `${TRUST_ENV.sha256} or move it to ${TRUST_ENV.config}`,
        reloads: 'applied',
      };
}
