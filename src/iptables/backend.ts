// Which iptables backend to drive. Like istio-iptables, prefer nft unless the
// legacy backend already holds rules: the two cannot see each other's rules
// (separate kernel tables), and a pod whose CNI uses legacy must stay on it.
import type { CommandRunner } from './runner.js';
import type { Family } from './types.js';

export type Backend = 'nft' | 'legacy';
export type BackendChoice = Backend | 'auto';

export interface Binaries {
  backend: Backend;
  restore: string;
  save: string;
}

export function binaries(backend: Backend, family: Family): Binaries {
  const base = family === 4 ? 'iptables' : 'ip6tables';
  return { backend, restore: `${base}-${backend}-restore`, save: `${base}-${backend}-save` };
}

/** True when a save text holds at least one rule (not merely empty tables). */
export function holdsRules(saveText: string): boolean {
  return /^-A /m.test(saveText);
}

export async function detectBackend(runner: CommandRunner, choice: BackendChoice = 'auto'): Promise<Backend> {
  if (choice !== 'auto') return choice;
  for (const family of [4, 6] as const) {
    const r = await runner.run(binaries('legacy', family).save, []);
    if (r.code === 0 && holdsRules(r.stdout)) return 'legacy';
  }
  const nft = await runner.run(binaries('nft', 4).save, ['--version']);
  if (nft.code === 0) return 'nft';
  const legacy = await runner.run(binaries('legacy', 4).save, ['--version']);
  if (legacy.code === 0) return 'legacy';
  throw new Error('neither iptables-nft nor iptables-legacy is installed; install the iptables package');
}

/** Reads the backend override from the environment (MESHLET_IPTABLES_BACKEND). */
export function backendFromEnv(env: NodeJS.ProcessEnv = process.env): BackendChoice {
  const v = env['MESHLET_IPTABLES_BACKEND'];
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'nft' || v === 'legacy') return v;
  throw new Error(`MESHLET_IPTABLES_BACKEND=${v}: must be "nft", "legacy" or "auto"`);
}
