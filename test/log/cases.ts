// Log calls whose output meshlet's logger must write byte for byte as pino
// 10.4.0 did with meshlet's options (test/log/pino-fixtures.json holds what
// pino wrote for each; make-pino-fixtures.ts made it). Each case runs on a
// fresh root logger with Date.now frozen, so the lines are deterministic.
// Stacks are set by hand: a real one holds file paths and line numbers.
import { prng } from '../helpers/prng.js';

/** The part of a logger the cases use; pino's Logger and ours both have it. */
export interface CaseLogger {
  trace(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  fatal(...args: unknown[]): void;
  child(bindings: Record<string, unknown>): CaseLogger;
}

export interface LogCase {
  name: string;
  /** The root logger's level; trace unless given. */
  level?: string;
  call(log: CaseLogger): void;
}

/** Date.now while a case runs. */
export const FROZEN_NOW = Date.UTC(2026, 11, 1, 20, 0, 0, 123);

function err(message: string, props: Record<string, unknown> = {}, opts?: ErrorOptions): Error {
  const e = new Error(message, opts);
  e.stack = `Error: ${message}\n    at fixture (case.ts:1:1)`;
  return Object.assign(e, props);
}

function circular(): Record<string, unknown> {
  const o: Record<string, unknown> = { name: 'loop', n: 1 };
  o['self'] = o;
  return o;
}

function deep(levels: number, leaf: unknown): unknown {
  let v = leaf;
  for (let i = levels; i > 0; i--) v = { [`d${i}`]: v, z: i };
  return v;
}

class Endpoint {
  constructor(
    public host: string,
    public port: number,
  ) {}
  get url(): string {
    return `tcp://${this.host}:${this.port}`;
  }
}

export const CASES: LogCase[] = [
  { name: 'string only', call: (l) => l.info('hello') },
  { name: 'object and message', call: (l) => l.info({ a: 1, b: 'x', c: true, d: null }, 'msg here') },
  { name: 'object, no message', call: (l) => l.info({ a: 1 }) },
  { name: 'empty object', call: (l) => l.info({}) },
  { name: 'empty object and message', call: (l) => l.info({}, 'only msg') },
  { name: 'level trace', call: (l) => l.trace('t') },
  { name: 'level debug', call: (l) => l.debug('d') },
  { name: 'level warn', call: (l) => l.warn({ w: 1 }, 'w') },
  { name: 'level error', call: (l) => l.error('e') },
  { name: 'level fatal', call: (l) => l.fatal('f') },
  { name: 'below the level', level: 'warn', call: (l) => (l.info('dropped'), l.debug('dropped'), l.warn('kept'), l.error('kept too')) },
  { name: 'silent', level: 'silent', call: (l) => (l.fatal('no'), l.error({ a: 1 }, 'no'), l.child({ c: 1 }).fatal('no')) },
  { name: 'child of a warn logger', level: 'warn', call: (l) => (l.child({ c: 1 }).info('no'), l.child({ c: 1 }).warn('yes')) },
  {
    name: 'child bindings in order',
    call: (l) => l.child({ component: 'xds' }).child({ streamId: 3, kind: 'sotw' }).info({ typeUrl: 't', version: '1' }, 'xDS ACK'),
  },
  { name: 'field repeats a binding', call: (l) => l.child({ component: 'a', x: 1 }).info({ component: 'b' }, 'dup') },
  { name: 'binding repeats a binding', call: (l) => l.child({ component: 'a' }).child({ component: 'b' }).info('dup') },
  { name: 'binding named app', call: (l) => l.child({ app: 'other' }).info('app twice') },
  { name: 'binding named level is dropped', call: (l) => l.child({ level: 'x', b: 1 }).info('lvl') },
  { name: 'field named level', call: (l) => l.info({ level: 'x' }, 'lvl') },
  { name: 'field named time and msg', call: (l) => l.info({ time: 1, msg: 'inner' }) },
  { name: 'msg field and message', call: (l) => l.info({ msg: 'inner' }, 'outer') },
  { name: 'bindings with nested objects', call: (l) => l.child({ peer: { ip: '198.18.0.1', port: 53 }, tags: ['a', 'b'] }).info('b') },
  { name: 'binding undefined and function', call: (l) => l.child({ u: undefined, f: () => 1, k: 2 }).info('b') },
  { name: 'Error as the object', call: (l) => l.error(err('boom', { code: 'E_BOOM' }), 'it failed') },
  { name: 'Error as the object, no message', call: (l) => l.error(err('boom alone')) },
  { name: 'err field', call: (l) => l.error({ err: err('inner', { errno: -2, path: '/x' }), family: 'ipv4' }, 'rollback failed') },
  { name: 'err field, no message', call: (l) => l.error({ err: err('use my message') }) },
  { name: 'err field and msg field', call: (l) => l.error({ err: err('not this'), msg: 'this' }) },
  { name: 'err field is a string', call: (l) => l.warn({ err: 'ECONNRESET' }, 'xDS connection error') },
  { name: 'err field is a string, no message', call: (l) => l.warn({ err: 'text' }) },
  { name: 'err with a cause', call: (l) => l.error({ err: err('outer', {}, { cause: err('inner cause', { code: 'X' }) }) }, 'caused') },
  { name: 'err with a cause chain', call: (l) => l.error({ err: err('a', {}, { cause: err('b', {}, { cause: err('c') }) }) }, 'chain') },
  {
    name: 'err with an enumerable cause',
    call: (l) => {
      const e = err('outer');
      (e as { cause?: unknown }).cause = err('assigned cause');
      l.error({ err: e }, 'enumerable cause');
    },
  },
  { name: 'err with a string cause', call: (l) => l.error({ err: err('outer', {}, { cause: 'just text' }) }, 'string cause') },
  {
    name: 'err with an enumerable string cause',
    call: (l) => l.error({ err: Object.assign(err('outer'), { cause: 'text cause' }) }, 'enumerable string cause'),
  },
  {
    name: 'err with a circular cause',
    call: (l) => {
      const a = err('a');
      const b = err('b', {}, { cause: a });
      Object.defineProperty(a, 'cause', { value: b, enumerable: false });
      l.error({ err: a }, 'loop');
    },
  },
  {
    name: 'err with a nested error property',
    call: (l) => l.error({ err: err('outer', { inner: err('nested', { code: 1 }), data: { a: 1 } }) }, 'nested'),
  },
  {
    name: 'err that refers to itself',
    call: (l) => {
      const e = err('self');
      (e as unknown as Record<string, unknown>)['me'] = e;
      l.error({ err: e }, 'self ref');
    },
  },
  {
    name: 'aggregate error',
    call: (l) => {
      const e = new AggregateError([err('one'), err('two'), 'not an error'], 'many');
      e.stack = 'AggregateError: many\n    at fixture (case.ts:1:1)';
      l.error({ err: e }, 'agg');
    },
  },
  {
    name: 'TypeError subclass',
    call: (l) => {
      const e = new TypeError('bad type');
      e.stack = 'TypeError: bad type\n    at fixture (case.ts:1:1)';
      l.error(e, 'typed');
    },
  },
  { name: 'error-like plain object as err', call: (l) => l.error({ err: { message: 'plain', code: 7, type: 'Custom' } }, 'plain err') },
  { name: 'err without a stack', call: (l) => l.error({ err: { message: 'no stack' } }) },
  { name: 'Error under another key', call: (l) => l.error({ error: err('hidden', { code: 'C' }) }, 'other key') },
  { name: 'Error in an array', call: (l) => l.error({ errs: [err('x')] }, 'array') },
  { name: 'undefined values', call: (l) => l.info({ a: undefined, b: 1, c: { d: undefined, e: 2 }, arr: [undefined, 1] }, 'undef') },
  { name: 'only undefined', call: (l) => l.info({ a: undefined }) },
  { name: 'functions and symbols', call: (l) => l.info({ f: () => 1, s: Symbol('s'), o: { f: () => 1, s: Symbol('t'), k: 1 }, a: [() => 1] }, 'fs') },
  { name: 'non-finite numbers', call: (l) => l.info({ nan: NaN, inf: Infinity, ninf: -Infinity, negz: -0, o: { nan: NaN, inf: Infinity } }, 'nums') },
  { name: 'circular object', call: (l) => l.info({ o: circular() }, 'circ') },
  {
    name: 'circular array',
    call: (l) => {
      const a: unknown[] = [1, 'two'];
      a.push(a);
      l.info({ a }, 'circ array');
    },
  },
  {
    name: 'circular deep below',
    call: (l) => {
      const inner: Record<string, unknown> = { b: 2, a: 1 };
      inner['back'] = inner;
      l.info({ top: { mid: { inner } } }, 'deep circ');
    },
  },
  {
    name: 'shared, not circular',
    call: (l) => {
      const s = { v: 1 };
      l.info({ x: s, y: s, o: { p: s, q: s } }, 'shared');
    },
  },
  { name: 'circular and deep', call: (l) => l.info({ d: deep(8, circular()) }, 'deep') },
  {
    name: 'circular and wide',
    call: (l) => {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < 105; i++) o[`k${String(i).padStart(3, '0')}`] = i;
      o['self'] = o;
      const a: unknown[] = Array.from({ length: 150 }, (_, i) => i);
      a.push(a);
      const a101: unknown[] = Array.from({ length: 100 }, (_, i) => i);
      a101.push(a101);
      l.info({ o, a, a101 }, 'wide');
    },
  },
  { name: 'bigint at the top', call: (l) => l.info({ n: 12345678901234567890n }, 'big') },
  { name: 'bigint nested (keys sorted)', call: (l) => l.info({ o: { z: 1, n: 2n, a: { y: 1, b: 2 } }, p: { z: 1, a: 2 } }, 'big nested') },
  { name: 'bigint nested deep', call: (l) => l.info({ d: deep(7, 1n) }, 'big deep') },
  { name: 'bigint in a binding', call: (l) => l.child({ n: 3n, o: { b: 1n, a: 1 } }).info('big binding') },
  { name: 'deep without a fallback', call: (l) => l.info({ d: deep(9, 'leaf') }, 'deep plain') },
  {
    name: 'dates, maps, sets',
    call: (l) => l.info({ d: new Date(FROZEN_NOW), m: new Map([['a', 1]]), s: new Set([1]), o: { d: new Date(0) } }, 'objs'),
  },
  {
    name: 'strings to escape',
    call: (l) => l.info({ q: 'say "hi"\\', nl: 'a\nb\tc\u0001', u: 'héllo ✓ 🚀', ['we"ird\nkey']: 1 }, 'esc "msg"\n\u0002'),
  },
  { name: 'long strings', call: (l) => l.info({ s: 'x'.repeat(5000) + '"' }, 'y'.repeat(200)) },
  { name: 'arrays', call: (l) => l.info({ a: [1, 'a', null, [2, [3]], { k: 'v' }], e: [] }, 'arr') },
  { name: 'class instance and getter', call: (l) => l.info({ ep: new Endpoint('198.18.0.2', 80) }, 'class') },
  {
    name: 'null prototype object',
    call: (l) => {
      const o = Object.create(null) as Record<string, unknown>;
      o['a'] = 1;
      l.info({ o }, 'nullproto');
    },
  },
  { name: 'toJSON', call: (l) => l.info({ t: { toJSON: () => ({ shown: true }) }, s: { toJSON: () => 'str' } }, 'tojson') },
  {
    name: 'object with a numeric-like key order',
    call: (l) => l.info({ b: 1, 2: 'two', a: 2, 1: 'one' }, 'order'),
  },
  { name: 'redact top-level key', call: (l) => l.info({ key: 'secret-1', keyPem: 'secret-2', private_key: 'secret-3', other: 'ok' }, 'top') },
  { name: 'redact top-level non-strings', call: (l) => l.info({ key: 42, keyPem: { a: 1 }, private_key: null }, 'top types') },
  { name: 'redact top-level undefined', call: (l) => l.info({ key: undefined, other: 1 }, 'top undef') },
  { name: 'redact *.key', call: (l) => l.info({ tls: { key: 'secret', cert: 'c' }, other: { keyPem: 'secret', n: 1 } }, 'one down') },
  { name: 'redact *.key with undefined', call: (l) => l.info({ tls: { key: undefined, cert: 'c' } }, 'one down undef') },
  { name: 'redact *.private_key', call: (l) => l.info({ sds: { private_key: { inline_string: 'secret' }, name: 'n' } }, 'pk') },
  {
    name: 'redact *.*.private_key',
    call: (l) => l.info({ secret: { tls_certificate: { private_key: { inline_string: 'secret' }, certificate_chain: 'c' } } }, 'pk2'),
  },
  { name: 'redact in arrays', call: (l) => l.info({ list: [{ private_key: 'secret', n: 1 }, { key: 'not listed for arrays' }] }, 'arr') },
  { name: 'redact certs.keyPem', call: (l) => l.info({ certs: { keyPem: 'secret', chainPem: 'c' } }, 'certs') },
  { name: 'redact deeper is not listed', call: (l) => l.info({ a: { b: { key: 'deep-not-listed', private_key: 'x' } } }, 'deep') },
  { name: 'redact in bindings', call: (l) => l.child({ key: 'secret', tls: { keyPem: 'secret' }, c: 1 }).info('bound') },
  { name: 'redact in err', call: (l) => l.error({ err: err('with key', { key: 'secret', private_key: 'secret2' }) }, 'err key') },
  {
    name: 'redact with a circular value',
    call: (l) => {
      const o: Record<string, unknown> = { key: 'secret', n: 1 };
      o['self'] = o;
      l.info({ o }, 'redact circ');
    },
  },
  {
    name: 'redact does not change the caller object',
    call: (l) => {
      const o = { tls: { key: 'secret' } };
      l.info(o, 'first');
      l.info({ same: o.tls.key }, 'second');
    },
  },
  { name: 'message only through child', call: (l) => l.child({ component: 'dns' }).warn('dns: no resolver') },
];

const RANDOM_KEYS = ['key', 'keyPem', 'private_key', 'err', 'msg', 'level', 'a', 'b', 'certs', 'tls', 'z', '1', 'cause', 'message', 'stack', 'type'];
const LEAVES: (() => unknown)[] = [
  () => 1,
  () => 'str',
  () => true,
  () => null,
  () => undefined,
  () => NaN,
  () => 2n,
  () => -0,
  () => 'q"\n',
  () => () => 1,
  () => Symbol('s'),
];

/** A random value drawn from `rnd`: nested objects and arrays that revisit each other (cycles), errors with causes, odd leaves. */
function randomValue(rnd: () => number, d: number, pool: object[]): unknown {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)] as T;
  const r = rnd();
  if (d > 4 || r < 0.35) return pick(LEAVES)();
  if (r < 0.45 && pool.length > 0) return pick(pool);
  if (r < 0.55) {
    const e = err(pick(['m1', 'm2']), rnd() < 0.3 ? { code: 'C' } : {});
    if (rnd() < 0.2) Object.defineProperty(e, 'cause', { value: randomValue(rnd, d + 1, pool), enumerable: rnd() < 0.5, writable: true });
    return e;
  }
  if (r < 0.7) {
    const a: unknown[] = [];
    pool.push(a);
    for (let i = Math.floor(rnd() * 4); i > 0; i--) a.push(randomValue(rnd, d + 1, pool));
    return a;
  }
  const o: Record<string, unknown> = {};
  pool.push(o);
  for (let i = Math.floor(rnd() * 5); i > 0; i--) o[pick(RANDOM_KEYS)] = randomValue(rnd, d + 1, pool);
  return o;
}

/**
 * Seeded random calls with the key names that redaction, the err shape and
 * the line itself treat specially, at any depth, as fields and as child
 * bindings. Each case draws its values when it runs, from its own seed, so
 * the logger under test never sees objects another logger saw first.
 */
export function randomCases(seed: number, count: number): LogCase[] {
  const seeds = prng(seed);
  return Array.from({ length: count }, (_, i): LogCase => {
    const s = Math.floor(seeds() * 2 ** 32);
    return {
      name: `random #${i} (seed ${s})`,
      call: (l) => {
        const rnd = prng(s);
        const obj = randomValue(rnd, 0, []);
        const bindings = randomValue(rnd, 1, []);
        const msg = rnd() < 0.5 ? 'm' : undefined;
        const bind = rnd() < 0.3 && typeof bindings === 'object' && bindings !== null && !Array.isArray(bindings);
        const target = bind ? l.child(bindings as Record<string, unknown>) : l;
        if (typeof obj === 'object' && obj !== null) target.info(obj, msg);
        else target.info(msg ?? 'x');
      },
    };
  });
}

CASES.push(...randomCases(17, 500));
