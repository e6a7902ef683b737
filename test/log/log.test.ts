// meshlet's own logger: the same lines pino wrote (fixtures made with real
// pino, see make-pino-fixtures.ts), the levels the CLI accepts, and private
// keys kept out of the output, by path and by content.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLogger, createRootLogger, LEVEL_NAMES, REDACT_PATHS, type Logger } from '../../src/log.js';
import { CASES } from './cases.js';
import fixtures from './pino-fixtures.json' with { type: 'json' };
import { runCases } from './run-cases.js';

const pino = fixtures.cases as Record<string, string>;

/** A logger whose lines land in an array. */
function collect(level = 'trace'): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger({ level, sink: { write: (l) => lines.push(l) } }), lines };
}

describe('log lines are the lines pino wrote', () => {
  const ours = runCases((level, fd) => createRootLogger(level, fd));

  it('covers every case with a fixture', () => {
    expect(Object.keys(pino).sort()).toEqual(CASES.map((c) => c.name).sort());
  });

  it.each(CASES.filter((c) => !c.name.startsWith('random')).map((c) => c.name))('%s', (name) => {
    expect(ours[name]).toBe(pino[name]);
  });

  it('500 seeded random calls', () => {
    const differ = CASES.filter((c) => c.name.startsWith('random') && ours[c.name] !== pino[c.name]).map((c) => c.name);
    expect(differ).toEqual([]);
  });
});

describe('calls the types refuse, from plain JavaScript', () => {
  it('write what pino 10.4.0 wrote for them', () => {
    const { log, lines } = collect();
    // The first four lines are what pino wrote for the same calls, by hand before it was removed (time taken out).
    const untyped = log as unknown as Record<'info', (...args: unknown[]) => void>;
    untyped.info(null);
    untyped.info();
    untyped.info(42);
    untyped.info({ a: 1 }, 42);
    untyped.info({ a: 1 }, { key: 'k', o: { private_key: 'p' }, n: 1 });
    expect(lines.map((l) => l.replace(/"time":"[^"]*",/, ''))).toEqual([
      '{"level":30,"app":"meshlet","msg":null}\n',
      '{"level":30,"app":"meshlet"}\n',
      '{"level":30,"app":"meshlet","msg":42}\n',
      '{"level":30,"app":"meshlet","a":1,"msg":42}\n',
      // Not run through pino: it gave a message object the same key paths as a field (its msg stringifier was the wildcard one).
      '{"level":30,"app":"meshlet","a":1,"msg":{"key":"[redacted]","o":{"private_key":"[redacted]"},"n":1}}\n',
    ]);
  });
});

describe('where the logger deliberately differs from pino', () => {
  it('writes Buffers and URLs as their toJSON says (pino threw out of the log call)', () => {
    const { log, lines } = collect();
    log.info({ b: Buffer.from('hi'), u: new URL('http://198.18.0.1/x'), o: { b: Buffer.from([1]) } }, 'objs');
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      b: { type: 'Buffer', data: [104, 105] },
      u: 'http://198.18.0.1/x',
      o: { b: { type: 'Buffer', data: [1] } },
    });
  });

  it('never throws: a getter that throws gives a placeholder field (pino threw)', () => {
    const { log, lines } = collect();
    const hostile = {
      get x(): never {
        throw new Error('getter threw');
      },
    };
    expect(() => log.info({ ok: 1, g: hostile }, 'still logged')).not.toThrow();
    expect(() => log.child({ g: hostile }).info('child')).not.toThrow();
    expect(() => log.warn(hostile, 'top-level getter')).not.toThrow();
    expect(lines[0]).toContain('"ok":1');
    expect(lines[0]).toContain('"g":"[unable to serialize, circular reference is too complex to analyze]"');
    expect(lines[0]).toContain('"msg":"still logged"');
    expect(lines[2]).toMatch(/"x":"\[unable to serialize[^"]*\]","msg":"top-level getter"}\n$/);
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(() => JSON.parse(l) as unknown).not.toThrow();
  });
});

describe('levels', () => {
  it('accepts every level the CLI accepts, and nothing else', () => {
    for (const l of LEVEL_NAMES) expect(collect(l).log.level).toBe(l);
    for (const bad of ['verbose', 'constructor', 'toString', 'INFO', '']) {
      expect(() => createLogger({ level: bad, sink: { write: () => undefined } })).toThrow(`unknown log level "${bad}"`);
    }
  });

  it('isLevelEnabled, level changes, and children copying the level when made', () => {
    const { log, lines } = collect('info');
    expect(log.isLevelEnabled('info')).toBe(true);
    expect(log.isLevelEnabled('debug')).toBe(false);
    expect(log.isLevelEnabled('nonsense')).toBe(false);
    expect(log.isLevelEnabled('constructor')).toBe(false);
    const child = log.child({ c: 1 });
    log.level = 'error';
    log.warn('dropped');
    child.warn('child keeps info');
    expect(child.level).toBe('info');
    log.level = 'silent';
    log.fatal('dropped');
    log.silent('never');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['child keeps info']);
  });
});

/** Real private keys in every PEM form meshlet could meet. */
function privateKeys(): Record<string, string> {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const ed = generateKeyPairSync('ed25519');
  return {
    pkcs8: ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    sec1: ec.privateKey.export({ type: 'sec1', format: 'pem' }).toString(),
    pkcs1: rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    encrypted: ed.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }).toString(),
  };
}

/** The base64 body of a PEM, the part that is the key. */
const bodyOf = (pem: string): string[] => pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));

/** Every number in a line's JSON; integers exactly (as BigInt), so 64-bit elements keep their bytes. */
function parseExact(line: string): unknown {
  type Ctx = { source?: string };
  const reviver = (_k: string, v: unknown, ctx?: Ctx): unknown =>
    typeof v === 'number' && ctx?.source !== undefined && /^-?\d+$/.test(ctx.source) ? BigInt(ctx.source) : v;
  return JSON.parse(line, reviver);
}

/**
 * The texts a run of numbers in the output could spell: as the elements of
 * any typed array kind (1, 2, 4 or 8 byte integers, little-endian as on the
 * machines meshlet runs on, or 16/32/64-bit floats).
 */
function spelled(values: readonly (number | bigint)[]): string[] {
  const texts: string[] = [];
  for (const width of [1, 2, 4, 8]) {
    if (!values.every((v) => typeof v === 'bigint')) break;
    const b = Buffer.alloc(values.length * width);
    values.forEach((v, i) => {
      let u = BigInt.asUintN(width * 8, v);
      for (let j = 0; j < width; j++, u >>= 8n) b[i * width + j] = Number(u & 0xffn);
    });
    texts.push(b.toString('latin1'));
  }
  const nums = values.map(Number);
  for (const F of [Float16Array, Float32Array, Float64Array]) texts.push(Buffer.from(new F(nums).buffer).toString('latin1'));
  return texts;
}

/** Whether text holds the key: its header, or any 8 characters in a row of its base64 body (a part of a key is a leak too). */
function spellsKey(text: string, pem: string): boolean {
  if (text.includes('PRIVATE KEY')) return true;
  return bodyOf(pem).some((l) => Array.from({ length: Math.max(0, l.length - 7) }, (_, i) => l.slice(i, i + 8)).some((w) => text.includes(w)));
}

/** Fails when any array or object of numbers, or of single characters (a String object's copy), in the parsed line spells the key. */
function expectNoKeyBytes(v: unknown, line: string, pem: string): void {
  if (typeof v !== 'object' || v === null) return;
  // In index order: the fallback writer sorts keys as strings ("0", "1", "10", ...), writes only the first 100 and a "..." count.
  const entries = Object.entries(v).filter(([k]) => k !== '...');
  if (entries.every(([k]) => /^\d+$/.test(k))) entries.sort(([a], [b]) => Number(a) - Number(b));
  const values = entries.map(([, x]) => x as unknown);
  if (values.length > 0 && values.every((x) => typeof x === 'string' && x.length === 1)) {
    expect(spellsKey(values.join(''), pem), `characters in ${line.slice(0, 300)}`).toBe(false);
  }
  if (values.length > 0 && values.every((x) => typeof x === 'number' || typeof x === 'bigint')) {
    for (const text of spelled(values)) expect(spellsKey(text, pem), `bytes in ${line.slice(0, 300)}`).toBe(false);
  }
  for (const x of values) expectNoKeyBytes(x, line, pem);
}

/** JSON.rawJSON, which the TypeScript lib in use does not declare yet. */
const rawJSON = (text: string): object => (JSON as unknown as { rawJSON(t: string): object }).rawJSON(text);

function expectNoKey(lines: readonly string[], pem: string): void {
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) {
    expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    expectNoKeyBytes(parseExact(line), line, pem);
    expect(line).not.toContain('PRIVATE KEY');
    for (const chunk of bodyOf(pem)) expect(line).not.toContain(chunk);
    // JSON escapes the line breaks; the body must not appear that way either.
    expect(line).not.toContain(JSON.stringify(bodyOf(pem).join('\n')).slice(1, -1));
  }
}

/** An object with `value` at a dot path, the wildcards filled in with a name, or with an array. */
function placeAt(path: string, value: unknown, wildcard: 'name' | 'array'): Record<string, unknown> {
  const segs = path.split('.');
  let v: unknown = value;
  for (let i = segs.length - 1; i >= 0; i--) {
    const s = segs[i] as string;
    if (s === '*') v = wildcard === 'array' && i > 0 ? [v] : { tls_certificate: v };
    else v = { [s]: v };
  }
  return v as Record<string, unknown>;
}

describe('private keys never reach the output', () => {
  const keys = privateKeys();

  it.each(REDACT_PATHS)('at the listed path %s, as fields and as bindings', (path) => {
    for (const pem of Object.values(keys)) {
      for (const wildcard of ['name', 'array'] as const) {
        const obj = placeAt(path, pem, wildcard);
        const { log, lines } = collect();
        log.info(obj, 'fields');
        log.child(obj).info('bindings');
        log
          .child({ component: 'x' })
          .child(obj)
          .error({ err: Object.assign(new Error('e'), obj) }, 'err props');
        expectNoKey(lines, pem);
        expect(lines[0]).toContain('"[redacted]"');
      }
    }
    // The path alone censors it, whatever it holds: a key in DER base64 or a passphrase has no PEM header to spot.
    const secret = 'MHcCAQEEIBase64DerWithoutHeader';
    for (const wildcard of ['name', 'array'] as const) {
      const obj = placeAt(path, secret, wildcard);
      const { log, lines } = collect();
      log.info(obj, 'fields');
      log.child(obj).info('bindings');
      for (const line of lines) expect(line).not.toContain(secret);
      expect(lines.every((l) => l.includes('"[redacted]"'))).toBe(true);
    }
  });

  it('under key names no path lists (content check, stricter than pino)', () => {
    const pem = keys['pkcs8'] as string;
    const { log, lines } = collect();
    const cyclic: Record<string, unknown> = { inline: pem };
    cyclic['self'] = cyclic;
    const cause = new Error(`cannot parse ${pem}`);
    const calls: [string, () => void][] = [
      ['a plain field', () => log.info({ pemData: pem }, 'x')],
      ['deep', () => log.info({ a: { b: { c: { d: [{ e: pem }] } } } }, 'x')],
      ['an array of strings', () => log.info({ list: ['ok', pem] }, 'x')],
      ['the message', () => log.warn({ a: 1 }, `bad key: ${pem}`)],
      ['the message alone', () => log.warn(pem)],
      ['an Error message and stack', () => log.error(new Error(`bad key ${pem}`), 'failed')],
      ['an err cause', () => log.error({ err: new Error('outer', { cause }) }, 'failed')],
      ['an error property', () => log.error({ err: Object.assign(new Error('e'), { detail: pem }) }, 'failed')],
      ['an Error under another key', () => log.error({ error: Object.assign(new Error('e'), { text: pem }) }, 'failed')],
      ['a Buffer', () => log.info({ raw: Buffer.from(pem) }, 'x')],
      ['a Uint8Array', () => log.info({ raw: new Uint8Array(Buffer.from(pem)) }, 'x')],
      ['a toJSON result', () => log.info({ t: { toJSON: () => ({ v: pem }) } }, 'x')],
      ['a cycle (the fallback writer)', () => log.info({ cyclic }, 'x')],
      ['a BigInt beside it (the fallback writer)', () => log.info({ o: { n: 1n, v: pem, raw: Buffer.from(pem) } }, 'x')],
      ['a child binding', () => log.child({ tlsMaterial: { inline: pem } }).info('x')],
      ['a key name', () => log.info({ o: { [pem]: 1 }, [pem]: 2 }, 'x')],
      ['a key name in the fallback writer', () => log.info({ o: { [pem]: 1, n: 1n } }, 'x')],
      ['the msg field', () => log.info({ msg: pem })],
      // Under a key the wildcard paths reach, a copied Uint8Array lost its bytes to the check and a copied String object its text.
      ['a Uint8Array under a wildcard path', () => log.info({ x: new Uint8Array(Buffer.from(pem)) }, 'x')],
      ['a String object', () => log.info({ x: new String(pem) }, 'x')],
      ['a String object, nested', () => log.info({ x: { y: Object(pem) as object } }, 'x')],
      ['a String object in an array', () => log.info({ x: [new String(pem)] }, 'x')],
      ['a String object whose toString gives the key', () => log.info({ x: Object.assign(new String('ok'), { toString: () => pem }) }, 'x')],
      ['a String object in the fallback writer', () => log.info({ o: { n: 1n, s: new String(pem) } }, 'x')],
      ['a String object as a binding', () => log.child({ s: new String(pem) }).info('x')],
      ['an array of the bytes', () => log.info({ a: { b: { c: Array.from(Buffer.from(pem)) } } }, 'x')],
      ['a toJSON that returns the bytes', () => log.info({ a: { b: { toJSON: () => new Uint8Array(Buffer.from(pem)) } } }, 'x')],
      ['a toJSON that returns the bytes (fallback writer)', () => log.info({ a: { n: 1n, b: { toJSON: () => new Uint8Array(Buffer.from(pem)) } } }, 'x')],
      ['a raw JSON text', () => log.info({ a: { b: { c: { d: rawJSON(JSON.stringify(pem)) } } } }, 'x')],
    ];
    const failures: string[] = [];
    for (const [what, call] of calls) {
      const before = lines.length;
      call();
      expect(lines.length, what).toBe(before + 1);
      try {
        expectNoKey(lines.slice(before), pem);
      } catch {
        failures.push(what);
      }
    }
    expect(failures).toEqual([]);
    // The censored value says so where the value was.
    expect(JSON.parse(lines[0] as string)).toMatchObject({ pemData: '[redacted]' });
    for (const pemOther of Object.values(keys)) {
      const { log: l2, lines: out } = collect();
      l2.info({ any: pemOther }, 'x');
      expectNoKey(out, pemOther);
    }
  });

  /** The key's bytes in every kind of byte container; the typed arrays over a copy padded to whole elements. */
  function byteHolders(pem: string): [string, () => object][] {
    const padded = (): ArrayBuffer => {
      const b = Buffer.alloc(Math.ceil(pem.length / 8) * 8 + 8, ' ');
      b.write(pem, 3, 'latin1'); // off the element boundaries, so no kind reads it as whole elements by luck
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
    };
    const shared = (): SharedArrayBuffer => {
      const s = new SharedArrayBuffer(pem.length);
      Buffer.from(s).write(pem, 'latin1');
      return s;
    };
    const kinds = [Uint16Array, Int16Array, Uint32Array, Int32Array, Float16Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array];
    return [
      ['Buffer', () => Buffer.from(pem)],
      ['Buffer slice of a larger buffer', () => Buffer.from(`header ${pem} trailer`).subarray(7, 7 + pem.length)],
      ['Uint8Array', () => new Uint8Array(Buffer.from(pem))],
      ['Int8Array', () => new Int8Array(Buffer.from(pem))],
      ['Uint8ClampedArray', () => new Uint8ClampedArray(Buffer.from(pem))],
      ...kinds.map((K): [string, () => object] => [K.name, () => new K(padded())]),
      ['DataView', () => new DataView(padded())],
      ['DataView window', () => new DataView(padded(), 3, pem.length)],
      ['ArrayBuffer', () => padded()],
      ['SharedArrayBuffer', () => shared()],
    ];
  }

  /** Where a value goes: listed and unlisted keys, nested, in arrays, and where BigInt sends it to the fallback writer. */
  const placements: [string, (v: object) => Record<string, unknown>][] = [
    ['listed key', (v) => ({ key: v })],
    ['listed *.key', (v) => ({ tls: { key: v } })],
    ['listed *.*.private_key', (v) => ({ a: { b: { private_key: v } } })],
    ['unlisted', (v) => ({ x: v })],
    ['unlisted, nested', (v) => ({ x: { y: v } })],
    ['unlisted, deep in arrays', (v) => ({ a: { b: [{ c: { d: [v] } }] } })],
    ['fallback writer', (v) => ({ n: 1n, x: v })],
    ['fallback writer, nested', (v) => ({ a: { n: 1n, b: { c: v } } })],
  ];

  it('in every kind of byte array, typed array or buffer, at any depth, as fields, bindings and error properties', () => {
    const pem = keys['pkcs8'] as string;
    const failures: string[] = [];
    for (const [kind, make] of byteHolders(pem)) {
      for (const [where, place] of placements) {
        const { log, lines } = collect();
        log.info(place(make()), 'fields');
        log.child(place(make())).info('bindings');
        log.error({ err: Object.assign(new Error('e'), place(make())) }, 'err property');
        log.error({ error: Object.assign(new Error('e'), place(make())) }, 'error under another key');
        try {
          expectNoKey(lines, pem);
          expect(lines).toHaveLength(4);
          for (const line of lines) expect(line).toContain('"[redacted]"');
        } catch (e) {
          failures.push(`${kind} at ${where}: ${(e as Error).message.split('\n')[0] as string}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('keeps key paths on class instances and errors, and writes boxed numbers and booleans as JSON does', () => {
    const { log, lines } = collect();
    class Holder {
      key = 'MHcCAQEEIBase64DerWithoutHeader';
      other = 1;
    }
    log.info({ h: new Holder(), e: Object.assign(new Error('e'), { key: 'MHcCAQEEIBase64DerWithoutHeader' }) }, 'paths');
    const boxes = { n: new Number(7), b: new Boolean(false), s: new String('hi'), r: rawJSON('12') };
    log.info({ boxes, nested: { boxes } }, 'boxes');
    expect(lines[0]).not.toContain('MHcCAQEEIBase64DerWithoutHeader');
    expect(JSON.parse(lines[0] as string)).toMatchObject({ h: { key: '[redacted]', other: 1 }, e: { key: '[redacted]' } });
    expect(JSON.parse(lines[1] as string)).toMatchObject({ boxes: { n: 7, b: false, s: 'hi', r: 12 }, nested: { boxes: { n: 7, b: false, s: 'hi', r: 12 } } });
  });

  it('leaves certificates and ordinary text alone', () => {
    const { log, lines } = collect();
    const cert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    log.info({ cert, note: 'the key file holds a PRIVATE KEY block' }, 'x');
    expect(JSON.parse(lines[0] as string)).toMatchObject({ cert, note: 'the key file holds a PRIVATE KEY block' });
  });
});
