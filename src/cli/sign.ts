// meshlet sign: a detached signature over a config file's exact bytes, for a
// pod that pins the public key (MESHLET_CONFIG_PUBKEY) and accepts signed
// updates only. The config must be valid and carry a version, so that a
// signature is never made over something the pod would refuse anyway.
import { loadConfigText } from '../config/load.js';
import { keyFingerprint, sha256Hex, sigPath, signConfig, versionOf } from '../config/trust.js';
import { UsageError } from './usage.js';
import { emit } from './output.js';
import type { Command } from './main.js';
const { readFileSync, writeFileSync } = process.getBuiltinModule('node:fs');
const { createPublicKey } = process.getBuiltinModule('node:crypto');
const { isUtf8 } = process.getBuiltinModule('node:buffer');

export const signCommand: Command = {
  run(values, positionals) {
    const keyFile = values['key'];
    if (typeof keyFile !== 'string') throw new UsageError('sign: --key FILE (a PEM Ed25519 or ECDSA P-256 private key) is required');
    let keyPem: string;
    try {
      keyPem = readFileSync(keyFile, 'utf8');
    } catch (err) {
      throw new UsageError(`sign: cannot read the key ${keyFile}: ${(err as Error).message}`);
    }
    if (!/PRIVATE KEY/.test(keyPem)) throw new UsageError(`sign: ${keyFile} holds no private key; sign with the private half, pin the public half`);
    if (values['print-pubkey']) {
      // The value for MESHLET_CONFIG_PUBKEY.
      const pem = createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }).toString();
      emit(values, { ok: true, publicKey: pem }, pem);
      return Promise.resolve(0);
    }
    const [file, ...extra] = positionals;
    if (file === undefined || extra.length > 0) throw new UsageError('sign: give exactly one config file: meshlet sign --key KEY [--out FILE.sig] CONFIG');
    const bytes = readFileSync(file);
    // meshlet reads a config as UTF-8 text: other bytes would verify at start but not once the file is watched.
    if (!isUtf8(bytes)) throw new UsageError(`sign: ${file} is not UTF-8 text; save it as UTF-8, then sign it`);
    const text = bytes.toString('utf8');
    loadConfigText(text, file);
    const version = versionOf(text);
    if (version === undefined || typeof version === 'object') {
      throw new UsageError(`sign: ${file} needs a top-level integer "version:" higher than the one the pods run${version ? ` (${version.error})` : ''}`);
    }
    const { signature, key } = signConfig(keyPem, bytes);
    const out = (values['out'] as string | undefined) ?? sigPath(file);
    writeFileSync(out, `${signature}\n`, { mode: 0o644 });
    const sha256 = sha256Hex(bytes);
    const keyId = `sha256:${keyFingerprint(key)}`;
    emit(
      values,
      { ok: true, config: file, version, sha256, keyType: key.asymmetricKeyType, key: keyId, signature: out },
      `signed ${file} (version ${version}, sha256 ${sha256}) with ${key.asymmetricKeyType} key ${keyId}: ${out}\n`,
    );
    return Promise.resolve(0);
  },
};
