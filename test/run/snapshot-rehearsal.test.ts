// The rehearsal the startup snapshot's build runs (src/snapshot-rehearsal.ts):
// it takes the path a start takes (config file, certificates, bootstrap,
// resources) on its sample, stays on the fast path (no YAML library, no zod),
// and leaves nothing of its build behind in the caches a start reuses.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createPki } from '../../src/devpki/pki.js';
import { rehearseStart } from '../../src/snapshot-rehearsal.js';
import { forgetBuilt } from '../../src/xds/snapshot.js';
import { memoSizes } from '../../src/xds/builders/memo.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { cleanupPod, makePod, startMeshlet, until } from '../helpers/meshlet.js';

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
    const report = await rehearseStart(await dir());
    // Listeners, clusters (the routes' among them) and both secrets.
    expect(report.resources).toBeGreaterThanOrEqual(10);
    // Its ADS client got clusters, listeners and secrets over the real socket, and each ACK reached the server.
    expect(report.ads).toEqual({ responses: 3, acks: 3 });
    expect(report.forgotten.built).toBe(report.resources);
    expect(report.forgotten.memos).toBeGreaterThan(0);
    // Nothing left to reuse: the next build (a start's) makes everything afresh.
    expect(forgetBuilt()).toBe(0);
    expect(memoSizes()).toBe(0);
  });

  it('fails on certificates a start would refuse, as a start would', async () => {
    const d = await dir();
    rmSync(path.join(d, 'certs', 'key.pem'));
    await expect(rehearseStart(d)).rejects.toThrow(/key\.pem/);
  });
});

describe('a start from the snapshot the rehearsal ran in', () => {
  it("fires the timers of the durations the rehearsal's ADS code used: an idle xDS connection is closed after 5 s", async () => {
    // The rehearsal's H2 connection used a 5 s idle timer and a 1 s end timer. node keeps a cleared unreferenced
    // timer's list, due at a time of the build's clock; in the snapshot, such a list made every later timer of its
    // duration silent (src/snapshot-rehearsal.ts). A client that connects and says nothing gets GOAWAY after 5 s.
    const p = await makePod();
    cleanups.push(() => cleanupPod(p));
    const m = startMeshlet(p, ['--no-envoy']);
    cleanups.push(async () => void (await m.stop()));
    await until('meshlet serving', () => (m.logs().includes('meshlet serving') ? true : undefined));
    const socket = net.connect(path.join(p.dir, 'run', 'xds.sock'));
    cleanups.push(() => void socket.destroy());
    socket.on('data', () => undefined);
    const started = Date.now();
    const closedAfter = await new Promise<number>((resolve, reject) => {
      socket.once('close', () => resolve(Date.now() - started));
      socket.once('error', reject);
      setTimeout(() => reject(new Error('the idle connection was not closed within 15 s: the 5 s idle timer never fired')), 15_000);
    });
    expect(closedAfter).toBeGreaterThanOrEqual(4_500);
  }, 20_000);
});
