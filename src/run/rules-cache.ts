// /ready's view of the iptables rules, cached. Reading the rules spawns
// iptables-save and ip per family (measured: about 40 ms of CPU with the
// children, 100 ms wall on a loaded 2-core machine); a probe polling /ready
// should not do that many times a second.
import type { Logger } from '../log.js';
import type { MeshConfig } from '../config/model.js';
import { KeptAnswer, monotonicMs } from './kept-answer.js';

export interface RulesState {
  ok: boolean;
  missing: string[];
}

/** How long a rules check is trusted, whatever it found. */
export const RULES_OK_TTL_MS = 1_000;

/**
 * Concurrent requests share one check, and its answer is kept for
 * RULES_OK_TTL_MS only, so a change that lets traffic past the rules shows on
 * /ready within that time plus one check. A negative answer is kept as long:
 * /ready is public (the metrics port), and a peer polling it while the rules
 * are missing would otherwise make meshlet spawn iptables-save back to back
 * (about 80 processes a second, measured); the rules come back only when
 * `meshlet init` runs again, which a second's delay does not hurt. A change
 * of state is logged once.
 */
export class RulesCache {
  private readonly kept: KeptAnswer<MeshConfig, RulesState>;
  private wereOk = true;

  constructor(
    private readonly check: (config: MeshConfig) => Promise<RulesState>,
    private readonly log: Logger,
    now: () => number = monotonicMs,
  ) {
    this.kept = new KeptAnswer((r) => r.ok, RULES_OK_TTL_MS, now, RULES_OK_TTL_MS);
  }

  get(config: MeshConfig): Promise<RulesState> {
    return this.kept.get(config, async () => {
      const r = await this.check(config);
      // Once per transition: someone changed the rules under a running pod.
      if (!r.ok && this.wereOk)
        this.log.warn({ missing: r.missing }, 'iptables rules no longer intact: /ready is 503 until meshlet init runs again (restart the pod)');
      if (r.ok && !this.wereOk) this.log.info('iptables rules intact again');
      this.wereOk = r.ok;
      return r;
    });
  }
}
