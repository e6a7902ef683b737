// Build-time generator of validate-spec.ts: the spec the zod-free validator
// (validate-fast.ts) checks a config against. It walks the zod schema in
// schema.ts through each node's definition (`_zod.def`) and writes what each
// node accepts and what it fills in; a node, check or wrapper it does not
// know fails the generation, so the spec cannot quietly accept less strictly
// than zod. `npm run build` regenerates the file (prebuild), and a test fails
// when the committed file is stale.
//   npx tsx src/config/validate-gen.ts   (writes src/config/validate-spec.ts next to this file's source)
import { fieldParserOf, schemas } from './schema.js';
import type { SpecField, SpecNode, SpecValue } from './validate-fast.js';
const { writeFileSync } = process.getBuiltinModule('node:fs');
const { fileURLToPath } = process.getBuiltinModule('node:url');

interface ZodCheckDef {
  check: string;
  value?: unknown;
  inclusive?: boolean;
  minimum?: number;
  maximum?: number;
  format?: string;
  pattern?: RegExp;
}
interface ZodDef {
  type: string;
  shape?: Record<string, ZodLike>;
  catchall?: ZodLike;
  innerType?: ZodLike;
  element?: ZodLike;
  defaultValue?: unknown;
  entries?: Record<string, unknown>;
  checks?: { _zod: { def: ZodCheckDef } }[];
  check?: string;
  format?: string;
  coerce?: boolean;
}
interface ZodLike {
  _zod: { def: ZodDef };
}

function fail(path: string, what: string): never {
  throw new Error(`validate-gen: ${path || '(root)'}: ${what}; teach validate-gen.ts and validate-fast.ts the same rule, or keep it out of the schema`);
}

/** Number and length bounds from the checks; anything else is returned for the caller, which must know it. */
function bounds(path: string, checks: { _zod: { def: ZodCheckDef } }[], kind: 'number' | 'length'): { min?: number; max?: number; rest: typeof checks } {
  const out: { min?: number; max?: number; rest: typeof checks } = { rest: [] };
  const tighten = (key: 'min' | 'max', v: number): void => {
    const cur = out[key];
    out[key] = cur === undefined ? v : key === 'min' ? Math.max(cur, v) : Math.min(cur, v);
  };
  for (const c of checks) {
    const d = c._zod.def;
    if (kind === 'number' && (d.check === 'greater_than' || d.check === 'less_than')) {
      if (d.inclusive !== true || typeof d.value !== 'number') fail(path, `${d.check} that is not an inclusive number bound`);
      tighten(d.check === 'greater_than' ? 'min' : 'max', d.value);
    } else if (kind === 'length' && d.check === 'min_length' && typeof d.minimum === 'number') tighten('min', d.minimum);
    else if (kind === 'length' && d.check === 'max_length' && typeof d.maximum === 'number') tighten('max', d.maximum);
    else out.rest.push(c);
  }
  return out;
}

function node(path: string, schema: ZodLike): SpecNode {
  const def = schema._zod.def;
  if (def.coerce) fail(path, 'a coercing schema');
  // A format schema (z.int(), z.email(), ...) is its own first check; only z.int() is known.
  if (def.check !== undefined && !(def.type === 'number' && def.check === 'number_format' && def.format === 'safeint')) {
    fail(path, `${def.type} with its own check ${def.check}${def.format ? ` (${def.format})` : ''}`);
  }
  const checks = def.checks ?? [];
  switch (def.type) {
    case 'object': {
      if (checks.length > 0) fail(path, 'checks on an object');
      if (def.catchall?._zod.def.type !== 'never') fail(path, 'an object that is not strict');
      return { kind: 'object', fields: Object.entries(def.shape ?? {}).map(([key, s]) => field(`${path}${path ? '.' : ''}${key}`, key, s)) };
    }
    case 'array': {
      const { rest, ...b } = bounds(path, checks, 'length');
      if (rest.length > 0) fail(path, `array check ${rest[0]!._zod.def.check}`);
      return { kind: 'array', element: node(`${path}[]`, def.element!), ...b };
    }
    case 'number': {
      if (def.check !== 'number_format' || def.format !== 'safeint') fail(path, 'a number that is not z.int()');
      const { rest, ...b } = bounds(path, checks, 'number');
      if (rest.length > 0) fail(path, `number check ${rest[0]!._zod.def.check}`);
      return { kind: 'int', ...b };
    }
    case 'string': {
      const { rest, ...b } = bounds(path, checks, 'length');
      const patterns: RegExp[] = [];
      let parser: ReturnType<typeof fieldParserOf>;
      for (const c of rest) {
        const d = c._zod.def;
        if (d.check === 'string_format' && d.format === 'regex' && d.pattern instanceof RegExp) patterns.push(d.pattern);
        else if (d.check === 'custom' && fieldParserOf(c) !== undefined && parser === undefined) parser = fieldParserOf(c);
        else fail(path, `string check ${d.check}${d.format ? ` (${d.format})` : ''}`);
      }
      return { kind: 'string', ...b, ...(patterns.length > 0 ? { patterns } : {}), ...(parser !== undefined ? { parser } : {}) };
    }
    case 'enum': {
      const values = Object.values(def.entries ?? {});
      if (checks.length > 0 || !values.every((v): v is string => typeof v === 'string')) fail(path, 'an enum that is not of strings');
      if (Object.entries(def.entries ?? {}).some(([k, v]) => k !== v)) fail(path, 'an enum whose keys are not its values');
      return { kind: 'enum', values };
    }
    case 'boolean':
      if (checks.length > 0) fail(path, 'checks on a boolean');
      return { kind: 'boolean' };
    default:
      return fail(path, `node type ${def.type}`);
  }
}

function field(path: string, key: string, schema: ZodLike): SpecField {
  const def = schema._zod.def;
  const wrapper = def.type === 'optional' || def.type === 'default' || def.type === 'prefault';
  if (!wrapper) return { key, absent: 'required', node: node(path, schema) };
  if ((def.checks ?? []).length > 0) fail(path, `checks on ${def.type}`);
  const inner = def.innerType!;
  if (['optional', 'default', 'prefault', 'nullable'].includes(inner._zod.def.type)) fail(path, `${def.type} around ${inner._zod.def.type}`);
  if (def.type === 'optional') return { key, absent: 'optional', node: node(path, inner) };
  return { key, absent: def.type === 'default' ? 'default' : 'prefault', value: specValue(path, def.defaultValue), node: node(path, inner) };
}

function specValue(path: string, v: unknown): SpecValue {
  if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return v;
  if (Array.isArray(v)) return v.map((x) => specValue(path, x));
  if (typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, specValue(path, x)]));
  }
  return fail(path, `a default that is not plain JSON (${typeof v})`);
}

/** TypeScript source for a spec value or node: JSON with regular expressions as literals, on one line where it fits. */
function render(v: unknown, indent: string): string {
  const flat = renderFlat(v);
  if (indent.length + flat.length <= 140) return flat;
  const inner = `${indent}  `;
  if (Array.isArray(v)) return `[\n${v.map((x) => `${inner}${render(x, inner)},`).join('\n')}\n${indent}]`;
  const entries = Object.entries(v as object).filter(([, x]) => x !== undefined);
  return `{\n${entries.map(([k, x]) => `${inner}${key(k)}: ${render(x, inner)},`).join('\n')}\n${indent}}`;
}

function renderFlat(v: unknown): string {
  if (v instanceof RegExp) return v.toString();
  if (Array.isArray(v)) return `[${v.map(renderFlat).join(', ')}]`;
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    return entries.length === 0 ? '{}' : `{ ${entries.map(([k, x]) => `${key(k)}: ${renderFlat(x)}`).join(', ')} }`;
  }
  return JSON.stringify(v);
}

const key = (k: string): string => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : JSON.stringify(k));

/** The spec's source for `schema` (the config schema; another one only in tests of what the generator refuses). */
export function generateValidateSpec(schema: unknown = schemas().configSchema): string {
  const spec = node('', schema as ZodLike);
  return [
    '// GENERATED by src/config/validate-gen.ts from the zod schema in schema.ts (`npm run build` regenerates it). Do not edit.',
    '// What each node of the config accepts and fills in; validate-fast.ts checks a config against it without zod.',
    "import type { SpecNode } from './validate-fast.js';",
    '',
    `export const CONFIG_SPEC: SpecNode = ${render(spec, '')};`,
    '',
  ].join('\n');
}

/** The source file the spec belongs in (this file lives in src/config/, or dist/src/config/ once built). */
export const VALIDATE_SPEC_SOURCE = fileURLToPath(
  new URL(`${import.meta.url.includes('/dist/src/') ? '../../../src' : '..'}/config/validate-spec.ts`, import.meta.url),
);

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) writeFileSync(VALIDATE_SPEC_SOURCE, generateValidateSpec());
