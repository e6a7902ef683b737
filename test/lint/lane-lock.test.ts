// The lane lock that keeps namespace and Envoy files of one lane from
// overlapping: one holder at a time, a waiter wakes when the holder releases
// or dies, and different lanes or checkouts never wait on each other.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { acquireLane, laneSocketName } from '../helpers/lane-lock.js';

const root = `/lane-lock-test/${process.pid}/${Math.random()}`;

describe('lane lock', () => {
  it('lets one holder in at a time and wakes the waiter on release', async () => {
    const first = await acquireLane('a', root);
    let second: Awaited<ReturnType<typeof acquireLane>> | undefined;
    const waiting = acquireLane('a', root).then((l) => (second = l));
    // A different lane and a different checkout are free at once.
    const other = await acquireLane('b', root);
    const elsewhere = await acquireLane('a', `${root}-other`);
    expect(second).toBeUndefined();
    await first.release();
    await waiting;
    expect(second).toBeDefined();
    await Promise.all([second?.release(), other.release(), elsewhere.release()]);
  });

  it('wakes the waiter when the holder dies without releasing', async () => {
    const lockModule = fileURLToPath(new URL('../helpers/lane-lock.ts', import.meta.url));
    const holder = spawn(process.execPath, [
      '--import',
      'tsx',
      '-e',
      `import(${JSON.stringify(lockModule)}).then(async (m) => {` +
        ` await m.acquireLane('a', ${JSON.stringify(root)}); console.log('held'); setInterval(() => {}, 1000); })`,
    ]);
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
        holder.once('exit', (code) => reject(new Error(`the holder exited (${code}) before taking the lane`)));
      });
      let got = false;
      const waiting = acquireLane('a', root, 30_000).then((l) => {
        got = true;
        return l;
      });
      expect(got).toBe(false);
      holder.kill('SIGKILL');
      const lock = await waiting;
      expect(got).toBe(true);
      await lock.release();
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('names the lane when the wait runs out', async () => {
    const held = await acquireLane('c', root);
    await expect(acquireLane('c', root, 200)).rejects.toThrow(/test lane "c" stayed taken for 200 ms/);
    await held.release();
    expect(laneSocketName('c', root)).toMatch(/^\0meshlet-test-lane-c-[0-9a-f]{16}$/);
  });
});
