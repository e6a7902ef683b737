// Private keys never leave meshlet through a dump, a log line or Envoy's
// config_dump passthrough. Redaction is by key name and by content, so a key
// that ends up somewhere unexpected is still caught.
const KEY_FIELDS = new Set(['private_key', 'privateKey', 'keyPem', 'key_pem', 'password']);
const PEM_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----\s*/g;
export const REDACTED = '[redacted]';

export function redact<T>(value: T): T {
  return walk(value) as T;
}

function walk(v: unknown): unknown {
  if (typeof v === 'string') return v.includes('PRIVATE KEY-----') ? v.replace(PEM_KEY, REDACTED) : v;
  if (Array.isArray(v)) return v.map(walk);
  if (v instanceof Uint8Array) return walk(Buffer.from(v).toString('utf8')) === REDACTED ? REDACTED : v;
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = KEY_FIELDS.has(k) ? REDACTED : walk(x);
    return out;
  }
  return v;
}
