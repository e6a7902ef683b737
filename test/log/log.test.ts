// meshlet's own logger: the same lines pino wrote (fixtures made with real
// pino, see make-pino-fixtures.ts), the levels the CLI accepts, and private
// keys kept out of the output, by path and by content.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LOG_LEVELS } from '../../src/cli/main.js';
import { createLogger, createRootLogger, REDACT_PATHS, type Logger } from '../../src/log.js';
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
    for (const l of LOG_LEVELS) expect(collect(l).log.level).toBe(l);
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

function expectNoKey(lines: readonly string[], pem: string): void {
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) {
    expect(() => JSON.parse(line) as unknown, line).not.toThrow();
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
    ];
    for (const [what, call] of calls) {
      const before = lines.length;
      call();
      expect(lines.length, what).toBe(before + 1);
      expectNoKey(lines.slice(before), pem);
    }
    // The censored value says so where the value was.
    expect(JSON.parse(lines[0] as string)).toMatchObject({ pemData: '[redacted]' });
    for (const pemOther of Object.values(keys)) {
      const { log: l2, lines: out } = collect();
      l2.info({ any: pemOther }, 'x');
      expectNoKey(out, pemOther);
    }
  });

  it('leaves certificates and ordinary text alone', () => {
    const { log, lines } = collect();
    const cert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    log.info({ cert, note: 'the key file holds a PRIVATE KEY block' }, 'x');
    expect(JSON.parse(lines[0] as string)).toMatchObject({ cert, note: 'the key file holds a PRIVATE KEY block' });
  });
});
