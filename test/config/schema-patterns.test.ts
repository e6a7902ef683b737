// Every "pattern" in the generated JSON Schema (what an editor checks) must
// accept and refuse exactly what the zod schema (what meshlet checks) does.
import { describe, expect, it } from 'vitest';
import { jsonSchema } from '../../src/config/schema.js';
import { validateConfig } from '../../src/config/validate.js';

/** Each pattern's config path, a config that puts a value there, and the inputs to try. */
const NAME_INPUTS = [
  'web',
  'Web_Port',
  'WEB',
  'a',
  'A1',
  'a.b-c_d',
  '-web',
  'web-',
  '_x',
  'x_',
  '.x',
  'a b',
  'ü',
  'a'.repeat(63),
  'A'.repeat(63),
  'a'.repeat(64),
  '',
];
const TABLE: Record<string, { config: (v: string) => unknown; path: string; inputs: string[] }> = {
  '/properties/ingress/properties/ports/items/properties/name': {
    config: (v) => ({ ingress: { ports: [{ name: v, port: 8080 }] } }),
    path: 'ingress.ports[0].name',
    inputs: NAME_INPUTS,
  },
  '/properties/egress/properties/routes/items/properties/name': {
    config: (v) => ({ egress: { routes: [{ name: v, listen: '127.137.0.1:8081', remote: 'emoji-svc:8080' }] } }),
    path: 'egress.routes[0].name',
    inputs: NAME_INPUTS,
  },
  '/properties/probes/properties/checks/items/properties/name': {
    config: (v) => ({ probes: { checks: [{ name: v, kind: 'tcp', port: 8080 }] } }),
    path: 'probes.checks[0].name',
    inputs: NAME_INPUTS,
  },
  '/properties/probes/properties/checks/items/properties/path': {
    config: (v) => ({ probes: { checks: [{ name: 'web', kind: 'http', port: 8080, path: v }] } }),
    path: 'probes.checks[0].path',
    inputs: ['/', '/healthz', '/a/b?x=1', '/~x', 'healthz', '', '/a b', '/\t', '/ü', '//x'],
  },
};

function patterns(node: unknown, pointer = ''): Map<string, string> {
  const found = new Map<string, string>();
  if (node === null || typeof node !== 'object') return found;
  for (const [k, v] of Object.entries(node)) {
    if (k === 'pattern' && typeof v === 'string') found.set(pointer, v);
    else for (const [p, pat] of patterns(v, `${pointer}/${k}`)) found.set(p, pat);
  }
  return found;
}

describe('JSON Schema patterns agree with zod', () => {
  const all = patterns(jsonSchema());

  it('the table covers every pattern in the generated schema', () => {
    expect([...all.keys()].sort()).toEqual(Object.keys(TABLE).sort());
  });

  for (const [pointer, row] of Object.entries(TABLE)) {
    it(`${row.path}: the schema's pattern and zod agree on ${row.inputs.length} inputs`, () => {
      const pattern = all.get(pointer);
      expect(pattern, pointer).toBeDefined();
      // JSON Schema patterns are ECMA-262 regexes, unanchored, without flags.
      const re = new RegExp(pattern!, 'u');
      const disagreements: string[] = [];
      for (const input of row.inputs) {
        const result = validateConfig(row.config(input));
        const zodOk = result.ok || !result.errors.some((e) => e.path === row.path);
        if (zodOk !== re.test(input))
          disagreements.push(`${JSON.stringify(input)}: zod ${zodOk ? 'accepts' : 'refuses'}, schema ${re.test(input) ? 'accepts' : 'refuses'}`);
      }
      expect(disagreements).toEqual([]);
      // And the table is not trivially one-sided.
      expect(row.inputs.some((i) => re.test(i))).toBe(true);
      expect(row.inputs.some((i) => !re.test(i))).toBe(true);
    });
  }

  it('a mixed-case name is accepted by both (what check accepts, an editor accepts)', () => {
    const result = validateConfig({ ingress: { ports: [{ name: 'Web_Port', port: 8080 }] } });
    expect(result.ok).toBe(true);
    expect(new RegExp(all.get('/properties/ingress/properties/ports/items/properties/name')!, 'u').test('Web_Port')).toBe(true);
  });
});
