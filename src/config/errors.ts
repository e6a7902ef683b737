// A config error names where (path), what (the bad value) and why (the rule).

export interface ConfigError {
  path: string;
  value: unknown;
  rule: string;
}

export type PathSegment = string | number;

export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += out === '' ? s : `.${s}`;
  }
  return out === '' ? '(root)' : out;
}

/** At most this many errors are printed; the rest are counted. */
export const MAX_SHOWN_ERRORS = 20;

// C0/C1 controls, DEL, line/paragraph separators and the bidi controls that
// can make a terminal show text in another order than it is (U+202E...).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/gu;

/** Makes operator-supplied text safe to print: control characters escaped, length bounded. */
export function sanitize(text: string, max = 200): string {
  const cut = text.length > max ? `${text.slice(0, max - 3)}...` : text;
  return cut.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A PEM private key anywhere in a value: never printed, not even its start. */
const PRIVATE_KEY = /PRIVATE KEY/;

function show(value: unknown, root = false): string {
  if (value === undefined) return 'nothing';
  // The whole document is not quoted: when it is not a mapping, it may be any file the path led to.
  if (root) return typeof value === 'string' ? `a string of ${value.length} characters` : Array.isArray(value) ? 'a list' : typeof value;
  let s: string;
  try {
    s =
      JSON.stringify(value, (_k, v: unknown) =>
        typeof v === 'string' && PRIVATE_KEY.test(v) ? '(a private key, not shown)' : typeof v === 'string' && v.length > 80 ? `${v.slice(0, 77)}...` : v,
      ) ?? typeof value;
  } catch {
    s = Array.isArray(value) ? '[...]' : '{...}';
  }
  return sanitize(s, 80);
}

export function formatError(e: ConfigError): string {
  return `${sanitize(e.path, 120)}: ${sanitize(e.rule, 300)} (got ${show(e.value, e.path === '(root)')})`;
}

/** The first MAX_SHOWN_ERRORS errors, formatted, then "and N more". */
export function formatErrors(errors: readonly ConfigError[], max = MAX_SHOWN_ERRORS): string[] {
  const lines = errors.slice(0, max).map(formatError);
  if (errors.length > max) lines.push(`and ${errors.length - max} more`);
  return lines;
}

export class ConfigInvalidError extends Error {
  constructor(
    readonly source: string,
    readonly errors: readonly ConfigError[],
  ) {
    super(
      `${sanitize(source)}: ${errors.length} error${errors.length === 1 ? '' : 's'}\n${formatErrors(errors)
        .map((l) => `  ${l}`)
        .join('\n')}`,
    );
    this.name = 'ConfigInvalidError';
  }
}

export function valueAt(root: unknown, segments: readonly PathSegment[]): unknown {
  let cur: unknown = root;
  for (const s of segments) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[s];
  }
  return cur;
}
