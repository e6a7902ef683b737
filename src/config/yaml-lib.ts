// The full YAML parser, loaded on first use: most configs never need it
// (src/config/yaml-fast.ts reads them), and a loaded module is memory kept for
// the life of the sidecar. A synchronous require, so that config loading
// stays synchronous.
import type * as Yaml from 'yaml';
const { createRequire } = process.getBuiltinModule('node:module');

let loaded: typeof Yaml | undefined;

export function yamlLibrary(): typeof Yaml {
  return (loaded ??= createRequire(import.meta.url)('yaml') as typeof Yaml);
}
