// Checks a config against the spec generated from the zod schema
// (validate-spec.ts, written by validate-gen.ts), without loading zod: zod
// costs megabytes resident and tens of milliseconds of start-up in every
// sidecar, and a valid config needs none of its error reporting.
//
// It answers only when it is sure: for an input it accepts, it returns exactly
// what `configSchema.safeParse(input).data` returns (defaults and prefaults
// filled in, keys in the schema's order); for anything else (an invalid
// value, but also an explicit `undefined`, an object with another prototype)
// it returns undefined, and the caller asks zod, so every error message stays
// zod's (test/config/validate-fast.test.ts compares both on generated configs).
import { isError } from './addresses.js';
import { FIELD_PARSERS, type FieldParserName } from './field-parsers.js';
import type { RawConfig } from './schema.js';
import { CONFIG_SPEC } from './validate-spec.js';

/** A JSON value a default or prefault stands for. */
export type SpecValue = string | number | boolean | readonly SpecValue[] | { readonly [key: string]: SpecValue };

export type SpecNode =
  | { readonly kind: 'object'; readonly fields: readonly SpecField[] }
  | { readonly kind: 'array'; readonly element: SpecNode; readonly min?: number; readonly max?: number }
  | { readonly kind: 'int'; readonly min?: number; readonly max?: number }
  | { readonly kind: 'string'; readonly min?: number; readonly max?: number; readonly patterns?: readonly RegExp[]; readonly parser?: FieldParserName }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'boolean' };

/**
 * One key of a strict object: what an absent key means (required: an error;
 * optional: left out; default: the value as it is; prefault: the value, checked
 * by the node like a given one), and the node a present value must pass.
 */
export interface SpecField {
  readonly key: string;
  readonly absent: 'required' | 'optional' | 'default' | 'prefault';
  readonly value?: SpecValue;
  readonly node: SpecNode;
}

/** The raw config zod would return for `input`, or undefined when zod must decide. */
export function validateFast(input: unknown): RawConfig | undefined {
  return check(CONFIG_SPEC, input) as RawConfig | undefined;
}

/** The value `node` makes of `v`, or undefined when it does not accept it (no accepted value is undefined). */
export function check(node: SpecNode, v: unknown): unknown {
  switch (node.kind) {
    case 'object':
      return object(node.fields, v);
    case 'array': {
      if (!Array.isArray(v)) return undefined;
      if ((node.min !== undefined && v.length < node.min) || (node.max !== undefined && v.length > node.max)) return undefined;
      const out: unknown[] = new Array<unknown>(v.length);
      for (let i = 0; i < v.length; i++) {
        const r = check(node.element, v[i]);
        if (r === undefined) return undefined;
        out[i] = r;
      }
      return out;
    }
    case 'int':
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) return undefined;
      return (node.min !== undefined && v < node.min) || (node.max !== undefined && v > node.max) ? undefined : v;
    case 'string':
      if (typeof v !== 'string') return undefined;
      if ((node.min !== undefined && v.length < node.min) || (node.max !== undefined && v.length > node.max)) return undefined;
      for (const re of node.patterns ?? []) {
        re.lastIndex = 0;
        if (!re.test(v)) return undefined;
      }
      return node.parser !== undefined && isError(FIELD_PARSERS[node.parser](v)) ? undefined : v;
    case 'enum':
      return typeof v === 'string' && node.values.includes(v) ? v : undefined;
    case 'boolean':
      return typeof v === 'boolean' ? v : undefined;
  }
}

/** The keys of each object node, as a set: looked up once per key of every entry of a long list. */
const keySets = new WeakMap<readonly SpecField[], Set<string>>();

function object(fields: readonly SpecField[], v: unknown): Record<string, unknown> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  // Plain data only, as a YAML or JSON reader makes it: anything else (a class instance, a prototype with keys) goes to zod.
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return undefined;
  const input = v as Record<string, unknown>;
  // for...in, as zod's unknown-key check walks it; a key outside the schema is an error (strict objects).
  const known = keySets.get(fields) ?? keySets.set(fields, new Set(fields.map((f) => f.key))).get(fields)!;
  for (const key in input) if (!known.has(key)) return undefined;
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const given = input[f.key];
    if (given === undefined) {
      // A key given as undefined is kept as undefined by zod in some cases; not worth copying.
      if (f.key in input) return undefined;
      if (f.absent === 'required') return undefined;
      if (f.absent === 'optional') continue;
      const value = shallowClone(f.value);
      const r = f.absent === 'default' ? value : check(f.node, value);
      if (r === undefined) return undefined;
      out[f.key] = r;
      continue;
    }
    const r = check(f.node, given);
    if (r === undefined) return undefined;
    out[f.key] = r;
  }
  return out;
}

/** A fresh copy of a default, as zod hands out: a returned config owns its arrays and objects. */
function shallowClone(v: SpecValue | undefined): unknown {
  if (Array.isArray(v)) return [...(v as SpecValue[])];
  if (typeof v === 'object') return { ...v };
  return v;
}
