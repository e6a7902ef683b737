// The rehearsal the startup snapshot's build runs (src/snapshot-rehearsal.ts):
// it takes the path a start takes (config file, certificates, bootstrap,
// resources) on its sample, stays on the fast path (no YAML library, no zod),
// and leaves nothing of its build behind in the caches a start reuses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createPki } from '../../src/devpki/pki.js';
import { rehearseStart } from '../../src/snapshot-rehearsal.js';
import { forgetBuilt } from '../../src/xds/snapshot.js';
import { memoSizes } from '../../src/xds/builders/memo.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const cleanups = cleanupAfterEach();

async function dir(): Promise<string> {
  const d = mkdtempSync(path.join(tmpdir(), 'meshlet-rehearsal-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  const pki = await createPki(path.join(d, 'ca'), { name: 'rehearsal' });
  await pki.writeContrastDir(path.join(d, 'certs'), await pki.issueLeaf({ sans: ['rehearsal'] }));
  return d;
}

describe('rehearseStart', () => {
  it('builds every resource of its sample, then forgets what a later build would reuse', async () => {
    const report = rehearseStart(await dir());
    // Listeners, clusters (the routes' among them) and both secrets.
    expect(report.resources).toBeGreaterThanOrEqual(10);
    expect(report.forgotten.built).toBe(report.resources);
    expect(report.forgotten.memos).toBeGreaterThan(0);
    // Nothing left to reuse: the next build (a start's) makes everything afresh.
    expect(forgetBuilt()).toBe(0);
    expect(memoSizes()).toBe(0);
  });

  it('fails on certificates a start would refuse, as a start would', async () => {
    const d = await dir();
    rmSync(path.join(d, 'certs', 'key.pem'));
    expect(() => rehearseStart(d)).toThrow(/key\.pem/);
  });
});
