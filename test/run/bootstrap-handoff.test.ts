// BootstrapHandoff (src/envoy/early.ts): the early Envoy's bootstrap goes
// through a real FIFO, and a poke delivers it at once, inside the call, with
// no turn of the event loop: `meshlet run` pokes between the steps of its
// start, which run in one stretch, so that Envoy never waits for all of them.
import { closeSync, constants, existsSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BootstrapHandoff } from '../../src/envoy/early.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const cleanups = cleanupAfterEach();

function fifo(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'meshlet-handoff-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const f = path.join(dir, 'envoy.json');
  execFileSync('mkfifo', ['-m', '0644', f]);
  return f;
}

/** Envoy's side: the FIFO opened for reading (without waiting for a writer), as Envoy's open of its bootstrap does. */
function openReader(f: string): number {
  const fd = openSync(f, constants.O_RDONLY | constants.O_NONBLOCK);
  cleanups.push(() => closeSync(fd));
  return fd;
}

function readAll(fd: number): string {
  const buf = Buffer.alloc(64 * 1024);
  const n = readSync(fd, buf, 0, buf.length, null);
  return buf.subarray(0, n).toString();
}

describe('BootstrapHandoff', () => {
  it('a poke after Envoy opened the FIFO writes the whole bootstrap before it returns, and removes the FIFO', async () => {
    const f = fifo();
    const text = `{"node":{"id":"x"},"pad":"${'a'.repeat(4000)}"}\n`;
    // Envoy is not there yet: the first try (in the constructor) finds no reader and leaves the text unsent.
    const h = new BootstrapHandoff({ pid: process.pid, fifo: f }, text, () => true);
    let settled = false;
    void h.done.then(() => (settled = true));
    const reader = openReader(f);
    // No await between the poke and the read: the bytes are there because poke() wrote them, not a timer.
    h.poke();
    expect(readAll(reader)).toBe(text);
    await h.done;
    expect(settled).toBe(true);
    expect(existsSync(f)).toBe(false);
  });

  it('without pokes, the retry timer delivers once Envoy opens', async () => {
    const f = fifo();
    const h = new BootstrapHandoff({ pid: process.pid, fifo: f }, '{"a":1}\n', () => true);
    const reader = openReader(f);
    await h.done;
    expect(readAll(reader)).toBe('{"a":1}\n');
  });

  it('rejects, and removes the FIFO, when Envoy exits before it opened it', async () => {
    const f = fifo();
    let alive = true;
    const h = new BootstrapHandoff({ pid: process.pid, fifo: f }, '{"a":1}\n', () => alive);
    alive = false;
    await expect(h.done).rejects.toThrow('Envoy exited before it read its bootstrap');
    expect(existsSync(f)).toBe(false);
    // Settled: a later poke does nothing (no throw, no write).
    h.poke();
  });

  it('refuses a bootstrap larger than the pipe takes at once, without writing any of it', async () => {
    const f = fifo();
    const reader = openReader(f);
    const h = new BootstrapHandoff({ pid: process.pid, fifo: f }, 'x'.repeat(61 * 1024), () => true);
    await expect(h.done).rejects.toThrow(/larger than the pipe takes at once/);
    // No writer ever opened it: the read ends at once, empty.
    expect(readAll(reader)).toBe('');
  });
});
