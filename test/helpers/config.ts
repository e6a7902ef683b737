// A config a test means to be valid: validated and normalized, or an error
// naming every rule it broke (a typo in a fixture fails loudly, not later).
import { formatError } from '../../src/config/errors.js';
import { withResolvers } from '../../src/config/load.js';
import type { MeshConfig } from '../../src/config/model.js';
import { validateConfig } from '../../src/config/validate.js';

export function validConfig(raw: unknown): MeshConfig {
  const r = validateConfig(raw);
  if (!r.ok) throw new Error(`test config invalid: ${r.errors.map(formatError).join('; ')}`);
  return r.config;
}

/** The same, with the pod's resolvers read from this resolv.conf text. */
export function validConfigWithResolvers(raw: unknown, resolvConf: string): MeshConfig {
  return withResolvers(validConfig(raw), () => resolvConf);
}
