// A check that /ready makes often and that costs something (reading the
// iptables rules spawns processes; asking Envoy's admin puts requests on its
// main thread): concurrent callers share one check, and a positive answer is
// kept for a while, for the same key only. A negative answer is kept only
// when the caller says for how long (default: not at all, so a check that
// fails is made again at the next call); a failure is never kept.

/** Milliseconds on a clock that only goes forward: a wall clock set back would keep an answer until it caught up. */
export function monotonicMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

export class KeptAnswer<K, R> {
  private kept: { key: K; at: number; answer: R; ttlMs: number } | undefined;
  private inFlight: { key: K; promise: Promise<R> } | undefined;

  constructor(
    private readonly isOk: (answer: R) => boolean,
    /** How long a positive answer is kept. */
    private readonly ttlMs: number,
    private readonly now: () => number = monotonicMs,
    /** How long a negative answer is kept. */
    private readonly negativeTtlMs = 0,
  ) {}

  /** The kept answer for `key`, the one under way for it, or a new one from `check`. */
  get(key: K, check: () => Promise<R>): Promise<R> {
    const kept = this.kept;
    if (kept?.key === key && this.now() - kept.at < kept.ttlMs) return Promise.resolve(kept.answer);
    if (this.inFlight?.key === key) return this.inFlight.promise;
    const promise = check().then(
      (answer) => {
        const ttlMs = this.isOk(answer) ? this.ttlMs : this.negativeTtlMs;
        this.kept = ttlMs > 0 ? { key, at: this.now(), answer, ttlMs } : undefined;
        this.done(promise);
        return answer;
      },
      (err: unknown) => {
        this.kept = undefined;
        this.done(promise);
        throw err;
      },
    );
    this.inFlight = { key, promise };
    return promise;
  }

  private done(promise: Promise<R>): void {
    if (this.inFlight?.promise === promise) this.inFlight = undefined;
  }
}
