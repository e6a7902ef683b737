// A check that /ready makes often and that costs something (reading the
// iptables rules spawns processes; asking Envoy's admin puts requests on its
// main thread): concurrent callers share one check, and a positive answer is
// kept for a while, for the same key only. A negative answer is never kept,
// so a check that fails is made again at the next call.

export class KeptAnswer<K, R> {
  private ok: { key: K; at: number; answer: R } | undefined;
  private inFlight: { key: K; promise: Promise<R> } | undefined;

  constructor(
    private readonly isOk: (answer: R) => boolean,
    /** How long a positive answer is kept. */
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The kept answer for `key`, the one under way for it, or a new one from `check`. */
  get(key: K, check: () => Promise<R>): Promise<R> {
    const ok = this.ok;
    if (ok?.key === key && this.now() - ok.at < this.ttlMs) return Promise.resolve(ok.answer);
    if (this.inFlight?.key === key) return this.inFlight.promise;
    const promise = check().then(
      (answer) => {
        this.ok = this.isOk(answer) ? { key, at: this.now(), answer } : undefined;
        this.done(promise);
        return answer;
      },
      (err: unknown) => {
        this.ok = undefined;
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
