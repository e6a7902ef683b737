// Temporary directories for tests: one place that names them and removes them.
import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Cleanup } from './cleanup.js';

/** A fresh directory under the system temp dir; the caller removes it (or leaves it to the OS). */
export function tmpDir(prefix = 'meshlet-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** A fresh directory that `cleanups` (a cleanupAfterEach stack) removes after the test. */
export function tmpDirFor(cleanups: Cleanup[], prefix = 'meshlet-test-'): string {
  const dir = tmpDir(prefix);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A fresh directory and the function that removes it. */
export function tempDir(prefix = 'meshlet-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = tmpDir(prefix);
  return Promise.resolve({ dir, cleanup: () => rm(dir, { recursive: true, force: true }) });
}

/** Directories made by make() until removeAll() (call it in afterEach). */
export function tmpDirs(prefix = 'meshlet-test-'): { make: () => string; removeAll: () => void } {
  const dirs: string[] = [];
  return {
    make: () => {
      const d = tmpDir(prefix);
      dirs.push(d);
      return d;
    },
    removeAll: () => {
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}
