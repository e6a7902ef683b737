// The readiness view of the iptables rules. Reading the kernel's tables
// (iptables-save) needs CAP_NET_ADMIN; a sidecar run without it falls back to
// the fingerprint `meshlet init` wrote after applying the same rules.
import { PUBLIC_MODE, writeFileAtomic } from '../fs/safe-write.js';
import type { MeshConfig } from '../config/model.js';
import { execFileRunner, generateRules, rulesInPlace, type IptablesDeps } from '../iptables/index.js';
const { createHash } = process.getBuiltinModule('node:crypto');
const { mkdir, readFile } = process.getBuiltinModule('node:fs/promises');
const path = process.getBuiltinModule('node:path');

export function rulesFingerprint(config: MeshConfig): string {
  return createHash('sha256')
    .update(JSON.stringify(generateRules(config)))
    .digest('hex');
}

/** Next to the xDS socket: the init container and the sidecar share that volume. */
export function fingerprintPath(config: MeshConfig): string {
  return path.join(path.dirname(config.proxy.xdsSocket), 'iptables.sha256');
}

export async function writeFingerprint(config: MeshConfig): Promise<void> {
  // init runs before anything untrusted in the pod and may find a fresh 0777
  // emptyDir: it only creates what is missing; the temp-and-rename write
  // cannot be redirected there, and meshlet run checks the directory.
  await mkdir(path.dirname(fingerprintPath(config)), { recursive: true, mode: 0o755 });
  writeFileAtomic(fingerprintPath(config), `${rulesFingerprint(config)}\n`, PUBLIC_MODE);
}

/** The rules in the kernel, through the runner and backend meshlet was given; the fingerprint without NET_ADMIN. */
export async function rulesReady(config: MeshConfig, deps: IptablesDeps = { runner: execFileRunner }): Promise<{ ok: boolean; missing: string[] }> {
  const kernel = await rulesInPlace(config, deps);
  if (kernel.ok || !kernel.missing.some((m) => /permission denied|must be root/i.test(m))) return kernel;
  let written = '';
  try {
    written = (await readFile(fingerprintPath(config), 'utf8')).trim();
  } catch {
    return { ok: false, missing: [`cannot read iptables without CAP_NET_ADMIN, and ${fingerprintPath(config)} (written by meshlet init) is missing`] };
  }
  return written === rulesFingerprint(config)
    ? { ok: true, missing: [] }
    : { ok: false, missing: [`meshlet init applied rules for a different config (${fingerprintPath(config)}); re-run init`] };
}
