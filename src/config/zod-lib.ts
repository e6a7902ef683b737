// zod, loaded on first use: a valid config is checked by the generated
// validator (validate-fast.ts) and never needs it; only a config that one does
// not accept, `npm run schema` and the generator load it. A loaded module is
// memory kept for the life of the sidecar. A synchronous require, so that
// config validation stays synchronous.
import type * as Zod from 'zod';
const { createRequire } = process.getBuiltinModule('node:module');

let loaded: typeof Zod | undefined;

export function zodLibrary(): typeof Zod {
  return (loaded ??= createRequire(import.meta.url)('zod') as typeof Zod);
}
