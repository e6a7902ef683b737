// Suites that need root, network namespaces, Envoy or OpenSSL decide here
// whether they run. On a developer machine without them, one visible skip
// names the reason. In CI (.ci/run sets MESHLET_TEST_REQUIRE_ALL=1) a suite
// that cannot run is a failure with the same reason, so a broken CI machine
// never turns into a green run that tested less. Opt-in suites (the image
// check) do not use this: they are off unless asked for.
import { describe, it } from 'vitest';

export const REQUIRE_ALL = process.env['MESHLET_TEST_REQUIRE_ALL'] === '1';

/**
 * `reason` is why `suite` cannot run here (undefined: it can). Returns true
 * when the suite must be skipped, after registering the test that says why:
 * a skip, or under MESHLET_TEST_REQUIRE_ALL=1 a failure.
 */
export function cannotRun(suite: string, reason: string | undefined): boolean {
  if (reason === undefined) return false;
  if (REQUIRE_ALL) {
    describe(suite, () => {
      it(`can run here (${reason})`, () => {
        throw new Error(
          `${suite} cannot run: ${reason}. MESHLET_TEST_REQUIRE_ALL=1 (set by .ci/run) requires every suite to run; fix the machine rather than the test.`,
        );
      });
    });
  } else {
    describe(suite, () => it.skip(`skipped: ${reason}`, () => undefined));
  }
  return true;
}
