import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, rmSync, symlinkSync, renameSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { FileWatcher } from '../../src/reload/watcher.js';
import { tmpDirs } from '../helpers/tmp.js';

const cleanups: (() => void)[] = [];
const dirs = tmpDirs('meshlet-watch-');
// Watchers first, then their directories.
afterEach(() => {
  while (cleanups.length) cleanups.pop()?.();
  dirs.removeAll();
});
const tempDir = dirs.make;

function watcher(files: string[], opts = {}): FileWatcher {
  const w = new FileWatcher(files, opts);
  cleanups.push(() => w.close());
  return w;
}

/** Lays out a directory the way the kubelet mounts a ConfigMap. */
function configMapDir(dir: string, version: string, content: string): void {
  const data = path.join(dir, `..${version}`);
  mkdirSync(data);
  writeFileSync(path.join(data, 'config.yaml'), content);
  const tmp = path.join(dir, '..data_tmp');
  symlinkSync(`..${version}`, tmp);
  renameSync(tmp, path.join(dir, '..data')); // atomic swap, as the kubelet does
}

describe('FileWatcher', () => {
  it('sees a Kubernetes ConfigMap update made by swapping the ..data symlink', async () => {
    const dir = tempDir();
    configMapDir(dir, 'v1', 'a: 1\n');
    symlinkSync('..data/config.yaml', path.join(dir, 'config.yaml'));
    const file = path.join(dir, 'config.yaml');
    const w = watcher([file], { pollMs: 0 });
    await w.start();
    const changed = once(w, 'change');
    configMapDir(dir, 'v2', 'a: 2\n');
    const [contents] = (await changed) as [Map<string, string>];
    expect(contents.get(file)).toBe('a: 2\n');
  });

  it('falls back to polling when no inotify event arrives', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, 'a: 1\n');
    // Watch a path whose directory watch we never get events from: start with
    // polling only by closing the inotify watchers right away.
    const w = watcher([file], { pollMs: 50, settleMs: 100 });
    await w.start();
    (w as unknown as { watchers: { close(): void }[] }).watchers.forEach((x) => x.close());
    const changed = once(w, 'change');
    writeFileSync(file, 'a: 3\n');
    const [contents] = (await changed) as [Map<string, string>];
    expect(contents.get(file)).toBe('a: 3\n');
  });

  it('does not report a file while it is still being written, only the finished bytes', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, 'a: 1\n');
    const w = watcher([file], { pollMs: 0, debounceMs: 5, settleMs: 30 });
    await w.start();
    const seen: string[] = [];
    w.on('change', (c) => seen.push(c.get(file) ?? ''));
    const fd = openSync(file, 'w');
    const full = `routes:\n${Array.from({ length: 50 }, (_, i) => `  - r${i}\n`).join('')}`;
    for (let i = 0; i < full.length; i += 40) {
      writeSync(fd, full.slice(i, i + 40));
      await new Promise((r) => setTimeout(r, 10));
    }
    closeSync(fd);
    await once(w, 'change');
    expect(seen.at(-1)).toBe(full);
    expect(seen.every((s) => s === full)).toBe(true);
  });

  it('stays quiet when the bytes did not change', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, 'a: 1\n');
    const w = watcher([file, path.join(dir, 'other.pem')], { pollMs: 0, settleMs: 100 });
    await w.start();
    let changes = 0;
    w.on('change', () => changes++);
    writeFileSync(file, 'a: 1\n');
    writeFileSync(path.join(dir, 'unrelated'), 'x');
    const changed = once(w, 'change');
    writeFileSync(path.join(dir, 'other.pem'), 'new');
    const [contents] = (await changed) as [Map<string, string>];
    expect(contents.get(path.join(dir, 'other.pem'))).toBe('new');
    expect(changes).toBe(1);
  });

  it('reports a file renamed over the watched name at once, without waiting for the settle window', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, 'a: 1\n');
    // A settle window far longer than the test's bound: only the rename path can report in time.
    const w = watcher([file], { pollMs: 0, settleMs: 600_000 });
    await w.start();
    const changed = once(w, 'change');
    writeFileSync(`${file}.tmp`, 'a: 2\n');
    renameSync(`${file}.tmp`, file);
    const [contents] = (await changed) as [Map<string, string>];
    expect(contents.get(file)).toBe('a: 2\n');
  });

  it('holds an in-place edit until it has been unchanged for the settle window, so a writer pausing mid-file is not reported early', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, 'a: 1\n');
    const w = watcher([file], { pollMs: 20, settleMs: 400 });
    await w.start();
    const seen: string[] = [];
    w.on('change', (c) => seen.push(c.get(file) ?? ''));
    const fd = openSync(file, 'w');
    writeSync(fd, 'a: 1\nb: ');
    // A pause shorter than the window, observed through the watcher's own polls rather than a fixed sleep.
    for (let polls = 0; polls < 8; polls++) await new Promise((r) => setTimeout(r, 20));
    writeSync(fd, '2\n');
    closeSync(fd);
    await once(w, 'change');
    expect(seen).toEqual(['a: 1\nb: 2\n']);
  });

  it('ignores a FIFO or a device swapped in for a watched file instead of hanging or reading it', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, 'a: 1\n');
    const w = watcher([file], { pollMs: 20, settleMs: 50 });
    await w.start();
    const seen: (string | undefined)[] = [];
    w.on('change', (c) => seen.push(c.get(file)));
    rmSync(file);
    symlinkSync('/dev/zero', file);
    const gone = once(w, 'change');
    const [contents] = (await gone) as [Map<string, string>];
    // Refused without reading: reported as absent, so the caller keeps its last good config.
    expect(contents.has(file)).toBe(false);
    rmSync(file);
    writeFileSync(`${file}.tmp`, 'a: 3\n');
    renameSync(`${file}.tmp`, file);
    await once(w, 'change');
    expect(seen).toEqual([undefined, 'a: 3\n']);
  });
});
