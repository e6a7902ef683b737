// The clean-up stack most suites keep: steps pushed during a test run after
// it, last first, also when the test failed, so one test's leftovers never
// reach the next.
import { afterEach } from 'vitest';

export type Cleanup = () => unknown;

/** Registers the afterEach that empties the returned stack; call at the top of a test file. */
export function cleanupAfterEach(): Cleanup[] {
  const cleanups: Cleanup[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()?.();
  });
  return cleanups;
}
