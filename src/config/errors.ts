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

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const s = JSON.stringify(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

export function formatError(e: ConfigError): string {
  return `${e.path}: ${e.rule} (got ${show(e.value)})`;
}

export class ConfigInvalidError extends Error {
  constructor(
    readonly source: string,
    readonly errors: readonly ConfigError[],
  ) {
    super(`${source}: ${errors.length} error${errors.length === 1 ? '' : 's'}\n${errors.map((e) => `  ${formatError(e)}`).join('\n')}`);
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
