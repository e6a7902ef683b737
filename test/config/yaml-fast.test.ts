// The quick YAML reader must never disagree with the full parser: a text it
// accepts gives exactly the value `yaml` gives, and everything else goes to
// the full parser (which keeps every error message and protection). Checked
// on the shipped examples, on the shapes the configs use, on texts that must
// be handed on, and on generated texts with a fixed seed.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseDocument, stringify } from 'yaml';
import { fastYaml } from '../../src/config/yaml-fast.js';
import { parseYaml } from '../../src/config/load.js';
import { versionOf } from '../../src/config/trust.js';
import { ConfigInvalidError } from '../../src/config/errors.js';
import { prng } from '../helpers/prng.js';

/** What the full parser makes of a text, as parseYaml used it before the quick reader. */
function full(text: string): { ok: true; value: unknown } | { ok: false } {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, logLevel: 'silent' });
  if (doc.errors.length > 0) return { ok: false };
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) as unknown };
  } catch {
    return { ok: false };
  }
}

function agrees(text: string): void {
  const quick = fastYaml(text);
  if (quick === undefined) return;
  const reference = full(text);
  expect(reference.ok, `quick reader accepted a text the full parser refuses:\n${text}`).toBe(true);
  if (reference.ok) expect(canonical(quick), text).toStrictEqual(canonical(reference.value));
}

/** Own entries and prototypes spelled out, so a key such as "constructor" compares as data. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return { list: v.map(canonical) };
  if (v === null || typeof v !== 'object') return v;
  return { plain: Object.getPrototypeOf(v) === Object.prototype, entries: Object.entries(v).map(([k, x]) => [k, canonical(x)]) };
}

const scaleConfig = (n: number): unknown => ({
  certs: { ca: '/tmp/ca.pem', certChain: '/tmp/chain.pem', key: '/tmp/key.pem', expectedSans: ['web', 'spiffe://x/y'] },
  ingress: {
    mode: 'tproxy',
    default: 'mtls',
    ports: Array.from({ length: n }, (_, i) => ({ name: `p${i}`, port: 20_001 + i, policy: i % 2 === 0 ? 'mtls' : 'tls', allowTls12: i % 3 === 0 })),
  },
  egress: {
    routes: Array.from({ length: n }, (_, i) => ({ name: `r${i}`, listen: `127.150.0.${1 + i}:15999`, remote: `198.18.0.${1 + i}:8443`, names: [] })),
    exclude: { ports: [443], cidrs: ['2001:db8:ff::/48'] },
  },
  dns: { enabled: false, address: '127.0.0.1:15053', upstreams: [] },
  debug: { address: '127.0.0.1:15020' },
  probes: { checks: [{ name: 'web', kind: 'http', port: 8080, path: '/healthz?x=1' }] },
  version: 7,
  accessLog: null,
});

describe('quick YAML reader', () => {
  it('reads what the config writers produce, equal to the full parser', () => {
    for (const options of [{}, { indentSeq: false }, { indent: 4 }]) {
      const text = stringify(scaleConfig(50), options);
      const quick = fastYaml(text);
      expect(quick, text).toStrictEqual(scaleConfig(50));
      agrees(text);
    }
  });

  it('reads the shipped examples rewritten in block style, equal to the full parser', () => {
    for (const file of ['config/example.yaml', 'config/example-mapped.yaml']) {
      const original = readFileSync(file, 'utf8');
      const reference = full(original);
      expect(reference.ok).toBe(true);
      const block = stringify(reference.ok ? reference.value : undefined, { collectionStyle: 'block' });
      expect(fastYaml(block), block).toStrictEqual(full(block).ok ? (full(block) as { value: unknown }).value : 'refused');
      agrees(original);
    }
  });

  it('reads the usual hand-written forms: comments, quotes, same-column lists, empty values', () => {
    const text = [
      '# a config',
      'certs:            # trailing comment',
      "  ca: '/a b/it''s.pem'",
      '  certChain: "/c\\"d\\\\e\\tf.pem" # quoted',
      '  key: x#y',
      'ingress:',
      '  ports:',
      '  - name: web',
      '    port: 8080',
      '',
      '  -   name: db',
      '      port: +5432',
      '  - name: neg',
      '    port: -7',
      'egress:',
      '  routes:',
      '    -',
      '      name: a',
      '    - plain item with  spaces',
      '    - ~',
      '    -',
      '    - NULL',
      'tls:',
      'dns: {}',
      'list: []   # none',
      'flags: [] ',
      'yes: no',
      'on: Off',
      'True1: TRUE',
      'f: False',
      'colon: a:b:c',
      'url: http://x/y?z=1',
      'dash: -abc',
      'dot: 1.2.3.4',
      'ipv6: 2001:db8::1',
    ].join('\n');
    const quick = fastYaml(text);
    expect(quick).toBeDefined();
    agrees(text);
    for (const other of ['hello\n', 'a:1\n', '- a\n- b: 1\n', 'a:\n  - x\nb:\n  []\n']) {
      expect(fastYaml(other), other).toBeDefined();
      agrees(other);
    }
    expect(quick).toMatchObject({ certs: { ca: "/a b/it's.pem", certChain: '/c"d\\e\tf.pem', key: 'x#y' }, dns: {}, list: [], tls: null });
  });

  it.each([
    ['an anchor and an alias', 'a: &x 1\nb: *x\n'],
    ['a tag', 'a: !!str 1\n'],
    ['a flow sequence', 'a: [1, 2]\n'],
    ['a flow mapping', 'a: { b: 1 }\n'],
    ['a block scalar', 'a: |\n  text\n'],
    ['a folded scalar', 'a: >\n  text\n'],
    ['a plain scalar over two lines', 'a: one\n  two\n'],
    ['a quoted scalar over two lines', 'a: "one\n  two"\n'],
    ['a duplicate key', 'a: 1\na: 2\n'],
    ['a duplicate key in a list item', 'l:\n  - a: 1\n    a: 2\n'],
    ['a tab', 'a:\t1\n'],
    ['a carriage return', 'a: 1\r\nb: 2\r\n'],
    ['non-ASCII', 'a: caf\u00e9\n'],
    ['a control character', 'a: \u001b[2J\n'],
    ['a byte order mark', '\ufeffa: 1\n'],
    ['a document marker', '---\na: 1\n'],
    ['a second document', 'a: 1\n---\nb: 2\n'],
    ['a directive', '%YAML 1.1\n---\na: yes\n'],
    ['an empty text', ''],
    ['only comments', '# nothing\n'],
    ['an indented document', '  a: 1\n'],
    ['uneven indentation', 'a:\n    b: 1\n  c: 2\n'],
    ['a nested compact list', 'a:\n  - - 1\n'],
    ['a quoted key', '"a": 1\n'],
    ['a complex key', '? a\n: 1\n'],
    ['a key that is null', 'null: 1\n'],
    ['a key that is a boolean', 'true: 1\n'],
    ['a numeric key', '8080: web\n'],
    ['__proto__ as a key', '__proto__: {}\n'],
    ['a colon and space inside a value', 'a: b: c\n'],
    ['a value ending in a colon', 'a: b:\n'],
    ['a hex number', 'a: 0x1F\n'],
    ['an octal number', 'a: 0o17\n'],
    ['a float', 'a: 1.5\n'],
    ['an exponent', 'a: 1e3\n'],
    ['infinity', 'a: .inf\n'],
    ['not a number', 'a: .NaN\n'],
    ['a double-quoted unicode escape', 'a: "\\u0041"\n'],
    ['a YAML-only escape', 'a: "\\e"\n'],
    ['an unterminated quote', "a: 'x\n"],
    ['a scalar continued on the next line', 'a:\n  text\n  more\n'],
    ['a scalar followed by a deeper line', 'a:\n  - x\n  text\n'],
    ['a space before the colon', 'a : 1\n'],
    ['a sequence indicator as a value', 'a: - 1\n'],
    ['a comma in a plain scalar', 'a: b, c\n'],
    ['nesting deeper than the config limit', Array.from({ length: 70 }, (_, i) => `${' '.repeat(i)}k:`).join('\n')],
  ])('hands %s to the full parser', (_what, text) => {
    expect(fastYaml(text)).toBeUndefined();
  });

  it('agrees with the full parser on generated texts (fixed seed)', () => {
    const r = prng(0x5eed17c);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const keys = ['a', 'b', 'name', 'port', 'x-y', 'k_1', 'null', 'True', 'on', 'a:b', 'a b', '"q"', '-a', '__proto__', 'constructor', 'toString'];
    const values = [
      '',
      '1',
      '-0',
      '+12',
      '007',
      '99999999999999999999',
      '1.0',
      '1e3',
      '0x1f',
      '0o7',
      '.inf',
      '-.Inf',
      '.nan',
      '~',
      'null',
      'Null',
      'NULL',
      'nULL',
      'true',
      'False',
      'TRUE',
      'tRUE',
      'yes',
      'x',
      'a b',
      'a  b',
      'a #c',
      'a#c',
      '#c',
      'a:b',
      'a: b',
      'a:',
      "'s'",
      "'it''s'",
      "'a",
      '"d"',
      '"a\\nb"',
      '"\\x41"',
      '"\\/"',
      '"a',
      '[]',
      '{}',
      '[ ]',
      '[a]',
      '{a: 1}',
      '&a x',
      '*a',
      '!x y',
      '|',
      '>-',
      '-',
      '- x',
      '-x',
      '-1',
      '?x',
      ':x',
      '@x',
      '`x',
      '%x',
      'a,b',
      'a]',
      '<<',
      'x   ',
      '"x"   # c',
      "'x' #c",
      '"x"y',
    ];
    // Half the texts lean towards the subset (simple keys and values, indentation that follows the nesting), so both paths get exercised.
    const easyKeys = keys.slice(0, 6);
    const easyValues = ['', '1', '-3', 'x', 'a b', 'a #c', "'s'", '"d"', '[]', '{}', 'true', '~', 'a:b', 'x   '];
    let accepted = 0;
    for (let n = 0; n < 6000; n++) {
      const easy = n % 2 === 0;
      const key = (): string => (easy && r() < 0.9 ? pick(easyKeys) : pick(keys));
      const value = (): string => (easy && r() < 0.9 ? pick(easyValues) : pick(values));
      const lines: string[] = [];
      const open: number[] = [0];
      let indent = 0;
      const count = 1 + Math.floor(r() * 8);
      for (let j = 0; j < count; j++) {
        const shift = r();
        if (easy) {
          if (shift < 0.3) open.push((indent += 2));
          else if (shift < 0.5 && open.length > 1) {
            open.pop();
            indent = open[open.length - 1]!;
          }
        } else if (shift < 0.25) indent += pick([1, 2, 4]);
        else if (shift < 0.4) indent = Math.max(0, indent - pick([1, 2, 4]));
        const pad = ' '.repeat(j === 0 && r() < 0.9 ? 0 : indent);
        const form = r();
        if (form < 0.5) lines.push(`${pad}${key()}:${pick(easy ? [' '] : ['', ' ', '  '])}${value()}`);
        else if (form < 0.75) lines.push(`${pad}-${pick(easy ? [' '] : [' ', '  ', ''])}${key()}: ${value()}`);
        else if (form < 0.85) lines.push(`${pad}- ${value()}`);
        else if (form < 0.9) lines.push(`${pad}${value()}`);
        else lines.push(pick(['', '# c', `${pad}# c`, '---', `${pad}-`]));
      }
      const text = lines.join('\n') + pick(['', '\n', '\n\n']);
      if (fastYaml(text) !== undefined) accepted++;
      agrees(text);
    }
    // The generator must reach the quick path often, or this test proves nothing.
    expect(accepted).toBeGreaterThan(500);
  });

  it('parseYaml still refuses what the protections refuse when the quick reader hands a text on', () => {
    const refused = (text: string): string => {
      try {
        parseYaml(text, 'c.yaml');
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigInvalidError);
        return (err as ConfigInvalidError).message;
      }
      throw new Error(`accepted: ${text}`);
    };
    expect(refused('ingress: &a\n  ports:\n    - *a\n')).toMatch(/alias refers to a node that contains it/);
    expect(refused(Array.from({ length: 70 }, (_, i) => `${' '.repeat(i)}k:`).join('\n'))).toMatch(/nested deeper than 64 levels/);
    expect(refused('a: 1\nb:\n  - x\n c: 2\n')).toMatch(/c\.yaml[\s\S]*line \d+, column \d+/);
    expect(refused('a: 1\na: 2\n')).toMatch(/YAML syntax: .*unique/i);
  });

  it('gives the same value through parseYaml either way', () => {
    const text = stringify(scaleConfig(5));
    expect(parseYaml(text, 'c.yaml')).toStrictEqual(full(text).ok ? (full(text) as { value: unknown }).value : undefined);
    expect(parseYaml(`${text}flow: [1, 2]\n`, 'c.yaml')).toMatchObject({ flow: [1, 2] });
  });

  it("reads a signed config's version the same way through either reader", () => {
    expect(versionOf('version: 7\ningress:\n  ports: []\n')).toBe(7);
    expect(versionOf('{version: 7, ingress: {ports: []}}\n')).toBe(7);
    expect(versionOf('ingress:\n  ports: []\n')).toBeUndefined();
    expect(versionOf('version: "7"\n')).toEqual({ error: 'version must be a non-negative integer, not "7"' });
    expect(versionOf('version: -1\n')).toEqual({ error: 'version must be a non-negative integer, not -1' });
    expect(versionOf('version: 1\nversion: 2\n')).toMatchObject({ error: expect.stringMatching(/^not valid YAML/) as unknown });
  });
});
