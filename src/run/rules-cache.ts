// /ready's view of the iptables rules, cached. Reading the rules spawns
// iptables-save and ip per family (measured: about 40 ms of CPU with the
// children, 100 ms wall on a loaded 2-core machine); a probe polling /ready
// should not do that many times a second.
import type { Logger } from '../log.js';
import type { MeshConfig } from '../config/model.js';

export interface RulesState {
  ok: boolean;
  missing: string[];
}

/** How long a positive rules check is trusted. */
export const RULES_OK_TTL_MS = 1_000;

/**
 * Concurrent requests share one check, and a positive answer is kept for
 * RULES_OK_TTL_MS only, so a change that lets traffic past the rules shows on
 * /ready within that time plus one check. A change of state is logged once.
 */
export class RulesCache {
  private ok: { config: MeshConfig; at: number } | undefined;
  private inFlight: { config: MeshConfig; promise: Promise<RulesState> } | undefined;
  private wereOk = true;

  constructor(
    private readonly check: (config: MeshConfig) => Promise<RulesState>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async get(config: MeshConfig): Promise<RulesState> {
    if (this.ok?.config === config && this.now() - this.ok.at < RULES_OK_TTL_MS) return { ok: true, missing: [] };
    if (this.inFlight?.config === config) return this.inFlight.promise;
    const promise = this.check(config).then((r) => {
      this.ok = r.ok ? { config, at: this.now() } : undefined;
      // Once per transition: someone changed the rules under a running pod.
      if (!r.ok && this.wereOk)
        this.log.warn({ missing: r.missing }, 'iptables rules no longer intact: /ready is 503 until meshlet init runs again (restart the pod)');
      if (r.ok && !this.wereOk) this.log.info('iptables rules intact again');
      this.wereOk = r.ok;
      return r;
    });
    this.inFlight = { config, promise };
    try {
      return await promise;
    } finally {
      if (this.inFlight?.promise === promise) this.inFlight = undefined;
    }
  }
}
