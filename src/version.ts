const { readFileSync } = process.getBuiltinModule('node:fs');

// meshlet's version. This file runs from src/ in tests and from dist/src/ when built.
function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'meshlet' && pkg.version) return pkg.version;
    } catch {
      /* try the next location */
    }
  }
  return 'unknown';
}

let cached: string | undefined;

/** meshlet's version from package.json, read on first use: importing this module touches no file. */
export function version(): string {
  return (cached ??= readVersion());
}
