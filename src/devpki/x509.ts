// A minimal DER encoder for X.509 v3 certificates (RFC 5280 §4.1), so test PKIs
// get any validity window and extension set without openssl processes or a
// certificate library. Only what test PKIs need: names of CN/O, DNS/URI/IP SANs.
import type { KeyObject } from 'node:crypto';
const { createHash, sign } = process.getBuiltinModule('node:crypto');
const { isIP } = process.getBuiltinModule('node:net');

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

const tlv = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), len(body.length), body]);
const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const explicit = (n: number, body: Buffer): Buffer => tlv(0xa0 | n, body);

function uint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return tlv(0x02, (v[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a + b];
  for (const n of rest) {
    const groups = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) groups.unshift((v & 0x7f) | 0x80);
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]|\.\d+/g, ''); // YYYYMMDDHHMMSSZ
  const year = d.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

/** A named-bit BIT STRING in DER: bit 0 is the most significant, trailing zero bits dropped. */
function namedBits(bits: number[]): Buffer {
  const top = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(top / 8) + 1);
  for (const b of bits) bytes[b >> 3] = (bytes[b >> 3] ?? 0) | (0x80 >> (b & 7));
  return tlv(0x03, Buffer.concat([Buffer.from([7 - (top & 7)]), bytes]));
}

export interface Name {
  cn: string;
  o?: string;
}

export function encodeName(n: Name): Buffer {
  const rdn = (type: string, value: string): Buffer => set(seq(oid(type), tlv(0x0c, Buffer.from(value, 'utf8'))));
  return seq(...(n.o === undefined ? [] : [rdn('2.5.4.10', n.o)]), rdn('2.5.4.3', n.cn));
}

/** A SAN string: "spiffe://…" (anything with "://") is a URI, an IP literal an IP, otherwise a DNS name. */
function generalName(san: string): Buffer {
  if (san.includes('://')) return tlv(0x86, Buffer.from(san, 'ascii'));
  const family = isIP(san);
  if (family === 4) return tlv(0x87, Buffer.from(san.split('.').map(Number)));
  if (family === 6) return tlv(0x87, ipv6Bytes(san));
  return tlv(0x82, Buffer.from(san, 'ascii'));
}

function ipv6Bytes(ip: string): Buffer {
  const [head = '', tail = ''] = ip.split('::');
  const parts = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = parts(head);
  const t = parts(tail);
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

const ext = (id: string, critical: boolean, value: Buffer): Buffer => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

export const KeyUsage = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

export interface CertSpec {
  subject: Name;
  issuer: Name;
  publicKey: KeyObject;
  /** The issuer's public key, for the authorityKeyIdentifier. */
  issuerPublicKey: KeyObject;
  signingKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
  keyUsage: number[];
  /** OIDs; leaves get serverAuth + clientAuth. */
  extKeyUsage?: string[];
  sans?: readonly string[];
}

export const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** RFC 5280 §4.2.1.2 allows any unique value; a SHA-1 of the SPKI is unique per key. */
export function keyId(k: KeyObject): Buffer {
  return createHash('sha1')
    .update(k.export({ type: 'spki', format: 'der' }))
    .digest();
}

function extensions(s: CertSpec): Buffer {
  const list = [
    ext('2.5.29.19', true, s.ca ? seq(bool(true)) : seq()),
    ext('2.5.29.15', true, namedBits(s.keyUsage)),
    ext('2.5.29.14', false, octets(keyId(s.publicKey))),
    ext('2.5.29.35', false, seq(tlv(0x80, keyId(s.issuerPublicKey)))),
  ];
  if (s.extKeyUsage && s.extKeyUsage.length > 0) list.push(ext('2.5.29.37', false, seq(...s.extKeyUsage.map(oid))));
  if (s.sans && s.sans.length > 0) list.push(ext('2.5.29.17', false, seq(...s.sans.map(generalName))));
  return explicit(3, seq(...list));
}

function signatureAlgorithm(k: KeyObject): Buffer {
  if (k.asymmetricKeyType === 'ec') return seq(oid('1.2.840.10045.4.3.2')); // ecdsa-with-SHA256
  if (k.asymmetricKeyType === 'rsa') return seq(oid('1.2.840.113549.1.1.11'), tlv(0x05, Buffer.alloc(0))); // sha256WithRSAEncryption
  throw new Error(`test PKI: cannot sign with a ${k.asymmetricKeyType ?? 'symmetric'} key`);
}

/** Builds and signs a certificate; returns it as PEM. */
export function buildCertificate(s: CertSpec, serial: Buffer): string {
  const alg = signatureAlgorithm(s.signingKey);
  const tbs = seq(
    explicit(0, uint(Buffer.from([2]))),
    uint(serial),
    alg,
    encodeName(s.issuer),
    seq(time(s.notBefore), time(s.notAfter)),
    encodeName(s.subject),
    s.publicKey.export({ type: 'spki', format: 'der' }),
    extensions(s),
  );
  const sig = sign('sha256', tbs, s.signingKey); // ECDSA signatures come out DER-encoded, as X.509 wants
  const der = seq(tbs, alg, tlv(0x03, Buffer.concat([Buffer.from([0]), sig])));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}
