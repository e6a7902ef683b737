// The shared, kept answer behind /ready's costly checks (the iptables rules,
// Envoy's listeners): one check for concurrent callers, a positive answer kept
// for the TTL and the same key, a negative one only when asked, a failed one
// never. And the rules' cache on top of it, which keeps missing rules as long
// as intact ones and logs each change of state once.
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { KeptAnswer } from '../../src/run/kept-answer.js';
import { RULES_OK_TTL_MS, RulesCache, type RulesState } from '../../src/run/rules-cache.js';
import { createRootLogger } from '../../src/log.js';
import type { MeshConfig } from '../../src/config/model.js';
import { tmpDirFor } from '../helpers/tmp.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const cleanups = cleanupAfterEach();

/** A clock the test moves. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 5_000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/** A check that counts its runs and answers what `answers` says next (the last one repeats). */
function counted<R>(...answers: (R | Error)[]): { runs: () => number; check: () => Promise<R> } {
  let runs = 0;
  return {
    runs: () => runs,
    check: () => {
      const a = answers[Math.min(runs, answers.length - 1)] as R | Error;
      runs += 1;
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
    },
  };
}

describe('KeptAnswer', () => {
  it('gives concurrent callers of one key one check', async () => {
    const kept = new KeptAnswer<string, boolean>((ok) => ok, 1_000);
    const a = counted(true);
    const got = await Promise.all([kept.get('a', a.check), kept.get('a', a.check), kept.get('a', a.check)]);
    expect(got).toEqual([true, true, true]);
    expect(a.runs()).toBe(1);
    // A check of another key (after a reload) runs on its own.
    const b = counted(false);
    expect(await kept.get('b', b.check)).toBe(false);
    expect(b.runs()).toBe(1);
  });

  it('keeps a positive answer until the TTL has passed, for its key only', async () => {
    const c = clock();
    const kept = new KeptAnswer<string, boolean>((ok) => ok, 1_000, c.now);
    const check = counted(true);
    await kept.get('v1', check.check);
    c.advance(999);
    expect(await kept.get('v1', check.check)).toBe(true);
    expect(check.runs()).toBe(1);
    await kept.get('v2', check.check);
    expect(check.runs()).toBe(2);
    c.advance(1_000);
    await kept.get('v2', check.check);
    expect(check.runs()).toBe(3);
  });

  it('keeps a negative answer only as long as asked, and a failure never', async () => {
    const c = clock();
    const kept = new KeptAnswer<string, boolean>((ok) => ok, 60_000, c.now, 1_000);
    const check = counted<boolean>(false, new Error('admin unreachable'), new Error('admin unreachable'), true);
    expect(await kept.get('k', check.check)).toBe(false);
    c.advance(999);
    expect(await kept.get('k', check.check)).toBe(false);
    expect(check.runs()).toBe(1);
    c.advance(1);
    await expect(kept.get('k', check.check)).rejects.toThrow('admin unreachable');
    await expect(kept.get('k', check.check)).rejects.toThrow('admin unreachable');
    expect(await kept.get('k', check.check)).toBe(true);
    expect(check.runs()).toBe(4);
  });

  it('ages answers on a clock that only goes forward, not the wall clock (which can be set back)', async () => {
    const wall = vi.spyOn(Date, 'now').mockImplementation(() => {
      throw new Error('the wall clock was read');
    });
    try {
      const kept = new KeptAnswer<string, boolean>((ok) => ok, 60_000);
      const check = counted(true);
      expect(await kept.get('k', check.check)).toBe(true);
      expect(await kept.get('k', check.check)).toBe(true);
      expect(check.runs()).toBe(1);
      const cache = new RulesCache(() => Promise.resolve({ ok: true, missing: [] }), createRootLogger('silent'));
      expect((await cache.get({} as MeshConfig)).ok).toBe(true);
    } finally {
      wall.mockRestore();
    }
  });

  it('keeps no negative answer and no failure by default: each is checked again at the next call', async () => {
    const kept = new KeptAnswer<string, boolean>((ok) => ok, 60_000);
    const check = counted<boolean>(false, new Error('admin unreachable'), true);
    expect(await kept.get('k', check.check)).toBe(false);
    await expect(kept.get('k', check.check)).rejects.toThrow('admin unreachable');
    expect(await kept.get('k', check.check)).toBe(true);
    expect(await kept.get('k', check.check)).toBe(true);
    expect(check.runs()).toBe(3);
  });
});

describe('RulesCache', () => {
  it('keeps the rules answer, missing rules too, for RULES_OK_TTL_MS and logs a change of state once', async () => {
    const dir = tmpDirFor(cleanups, 'meshlet-rules-cache-');
    const file = path.join(dir, 'log.jsonl');
    const fd = openSync(file, 'a');
    const c = clock();
    const missing: RulesState = { ok: false, missing: ['MESHLET_INBOUND is not jumped to from PREROUTING'] };
    const check = counted<RulesState>({ ok: true, missing: [] }, missing, missing, { ok: true, missing: [] });
    const cache = new RulesCache(check.check, createRootLogger('info', fd), c.now);
    const config = {} as MeshConfig;
    try {
      expect((await cache.get(config)).ok).toBe(true);
      expect((await cache.get(config)).ok).toBe(true);
      expect(check.runs()).toBe(1);
      c.advance(RULES_OK_TTL_MS);
      expect(await cache.get(config)).toEqual(missing);
      // A flood of /ready while the rules are missing: one check per RULES_OK_TTL_MS, not one per request.
      for (let i = 0; i < 50; i++) expect(await cache.get(config)).toEqual(missing);
      expect(check.runs()).toBe(2);
      c.advance(RULES_OK_TTL_MS);
      expect(await cache.get(config)).toEqual(missing);
      c.advance(RULES_OK_TTL_MS);
      expect((await cache.get(config)).ok).toBe(true);
      expect(check.runs()).toBe(4);
    } finally {
      closeSync(fd);
    }
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(lines).toEqual(['iptables rules no longer intact: /ready is 503 until meshlet init runs again (restart the pod)', 'iptables rules intact again']);
  });
});
