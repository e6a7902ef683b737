// For answers that cost Envoy's admin (its main thread) and that any client
// of an HTTP endpoint can ask for: the public scrape, the debug config dump.

/**
 * Single flight: a call made while an earlier one is under way gets that one's
 * promise instead of starting another. Nothing is kept once it settles, so a
 * call made afterwards runs `run` again (every later scrape reads fresh stats).
 */
export function singleFlight<T>(run: () => Promise<T>): () => Promise<T> {
  let current: Promise<T> | undefined;
  return () =>
    (current ??= run().finally(() => {
      current = undefined;
    }));
}
