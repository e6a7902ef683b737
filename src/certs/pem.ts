// Splits PEM text into blocks and parses certificates and keys, turning each
// failure into a message that says what to do. Key bytes never reach a message.
import type * as Crypto from 'node:crypto';
import type { KeyObject, X509Certificate } from 'node:crypto';
// node:crypto on first use, not at load: `meshlet run` reads the files before it spawns Envoy and parses them while
// Envoy starts (run/service.ts), so loading node:crypto is not among what Envoy waits for.
const crypto = (): typeof Crypto => process.getBuiltinModule('node:crypto');

export interface PemBlock {
  label: string;
  text: string;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
const KEY_LABELS = new Set(['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY']);

export function pemBlocks(text: string): PemBlock[] {
  return [...text.matchAll(BLOCK)].map((m) => ({ label: m[1] ?? '', text: `${m[0]}\n` }));
}

const isKeyLabel = (label: string): boolean => label.endsWith('PRIVATE KEY');

/** Oneline form of an X.509 name: "O=meshlet, CN=emoji-svc". */
export function nameOf(name: string): string {
  return name.split('\n').join(', ');
}

export interface ParsedCerts {
  certs: X509Certificate[];
  problems: string[];
}

/** Parses every CERTIFICATE block; `what` names the content for messages ("the mesh CA bundle"). */
export function parseCertificates(text: string, what: string, fieldName: string): ParsedCerts {
  const problems: string[] = [];
  if (text.trim() === '') return { certs: [], problems: [`file is empty — expected ${what} as PEM; Contrast's Initializer may not have written it yet`] };
  const blocks = pemBlocks(text);
  const certBlocks = blocks.filter((b) => b.label === 'CERTIFICATE');
  if (blocks.some((b) => isKeyLabel(b.label))) {
    problems.push(
      certBlocks.length === 0
        ? `holds a private key, not certificates — point ${fieldName} at ${what} ('-----BEGIN CERTIFICATE-----' blocks; Contrast: ` +
            `${fieldName === 'certs.ca' ? 'mesh-ca.pem' : 'certChain.pem'})`
        : `also holds a private key; this file must hold certificates only, since certificates may be logged and dumped — remove the key block`,
    );
  } else if (certBlocks.length === 0) {
    const found = blocks.length === 0 ? 'no PEM data' : `only ${[...new Set(blocks.map((b) => b.label))].join(', ')} blocks`;
    problems.push(`found ${found} — expected ${what} as one or more '-----BEGIN CERTIFICATE-----' blocks; is ${fieldName} the right file?`);
  }
  const certs: X509Certificate[] = [];
  certBlocks.forEach((b, i) => {
    try {
      certs.push(new (crypto().X509Certificate)(b.text));
    } catch (err) {
      problems.push(`certificate #${i + 1} is not valid X.509 (${(err as Error).message}) — the file is damaged or truncated; write it again from its source`);
    }
  });
  return { certs, problems };
}

export interface ParsedKey {
  key?: KeyObject;
  problems: string[];
}

export function parsePrivateKey(text: string, fieldName: string): ParsedKey {
  if (text.trim() === '') return { problems: [`file is empty — expected a PEM private key; Contrast's Initializer may not have written it yet`] };
  const blocks = pemBlocks(text);
  const keys = blocks.filter((b) => KEY_LABELS.has(b.label));
  if (keys.length === 0) return { problems: [noKeyProblem(blocks, fieldName)] };
  if (keys.length > 1) return { problems: [`holds ${keys.length} private keys; expected exactly one — keep only the key of the leaf certificate`] };
  try {
    const key = crypto().createPrivateKey((keys[0] as PemBlock).text);
    const unsupported = keyProblem(key);
    return unsupported === undefined ? { key, problems: [] } : { problems: [unsupported] };
  } catch (err) {
    return { problems: [`the private key cannot be parsed (${(err as Error).message}) — the file is damaged or truncated; write it again from its source`] };
  }
}

function noKeyProblem(blocks: PemBlock[], fieldName: string): string {
  if (blocks.some((b) => b.label === 'ENCRYPTED PRIVATE KEY')) {
    return `the private key is encrypted; meshlet needs it unencrypted, as Contrast writes it — decrypt it with 'openssl pkey -in FILE -out FILE'`;
  }
  if (blocks.some((b) => b.label === 'CERTIFICATE')) {
    return `holds a certificate, not a private key — point ${fieldName} at the key file (Contrast: key.pem)`;
  }
  return (
    "found no private key — expected a '-----BEGIN PRIVATE KEY-----' block (PKCS#8, as Contrast writes), " +
    "or 'BEGIN RSA PRIVATE KEY' / 'BEGIN EC PRIVATE KEY'"
  );
}

const EC_CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** Envoy's TLS takes RSA of 2048 bits or more and ECDSA on P-256, P-384 or P-521. */
function keyProblem(key: KeyObject): string | undefined {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    return d.namedCurve !== undefined && d.namedCurve in EC_CURVES
      ? undefined
      : `the EC key is on curve ${d.namedCurve ?? 'unknown'}; Envoy takes only P-256, P-384 or P-521 — issue a P-256 key`;
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = d.modulusLength ?? 0;
    return bits >= 2048 ? undefined : `the RSA key has ${bits} bits; Envoy refuses RSA keys under 2048 bits — issue a key of 2048 bits or more`;
  }
  return `the private key is ${key.asymmetricKeyType ?? 'not asymmetric'}; Envoy's TLS needs an EC (P-256) or RSA (2048+ bits) key`;
}

/** "EC P-256", "RSA 2048": the type of a key, for humans. */
export function keyTypeOf(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') return `EC ${EC_CURVES[d.namedCurve ?? ''] ?? d.namedCurve ?? '?'}`;
  if (key.asymmetricKeyType === 'rsa') return `RSA ${d.modulusLength ?? '?'}`;
  return key.asymmetricKeyType ?? 'unknown';
}
