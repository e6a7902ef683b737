// /ready's view of the iptables rules, from a sidecar with and without
// CAP_NET_ADMIN, in a network namespace the test creates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { NetLab, netnsUnavailable } from '../helpers/netns.js';
import { MESHLET } from '../helpers/meshlet.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun('readiness view of the iptables rules', netnsUnavailable());
const lab = new NetLab('mrc');
let ns = '';
const dir = mkdtempSync(path.join(tmpdir(), 'meshlet-rules-'));
chmodSync(dir, 0o755);

function writeConfig(name: string, port: number): string {
  const file = path.join(dir, name);
  writeFileSync(file, stringify({ ingress: { ports: [{ name: 'metrics', port, policy: 'plaintext' }] }, proxy: { xdsSocket: `${dir}/run/xds.sock` } }));
  return file;
}

/** rulesReady() in a separate node process inside the namespace, as `uid` with no capabilities (or as root). */
async function readyAs(config: string, asUid?: number): Promise<{ ok: boolean; missing: string[] }> {
  const script = `const { rulesReady } = await import(${JSON.stringify(path.resolve('dist/src/run/rules-check.js'))});
const { loadConfigFile } = await import(${JSON.stringify(path.resolve('dist/src/config/load.js'))});
console.log(JSON.stringify(await rulesReady(loadConfigFile(process.argv[1]))));`;
  const node = [process.execPath, '--input-type=module', '-e', script, config];
  const argv = asUid === undefined ? node : ['setpriv', `--reuid=${asUid}`, `--regid=${asUid}`, '--clear-groups', '--inh-caps=-all', '--', ...node];
  return JSON.parse(await lab.must(ns, argv)) as { ok: boolean; missing: string[] };
}

describe.skipIf(skip)('readiness view of the iptables rules', () => {
  beforeAll(async () => {
    ns = await lab.netns('pod');
  });
  afterAll(async () => {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('without NET_ADMIN it trusts only the fingerprint init wrote for the same config', async () => {
    const config = writeConfig('a.yaml', 8080);
    const before = await readyAs(config, 65534);
    expect(before.ok).toBe(false);
    expect(before.missing.join()).toMatch(/iptables\.sha256 \(written by meshlet init\) is missing/);

    await lab.must(ns, [process.execPath, ...MESHLET, 'init', '--config', config]);
    expect(await readyAs(config)).toEqual({ ok: true, missing: [] });
    expect(await readyAs(config, 65534)).toEqual({ ok: true, missing: [] });

    const other = writeConfig('b.yaml', 9090);
    const root = await readyAs(other);
    expect(root.ok).toBe(false);
    const unprivileged = await readyAs(other, 65534);
    expect(unprivileged.ok).toBe(false);
    expect(unprivileged.missing.join()).toMatch(/applied rules for a different config/);
  });
});
