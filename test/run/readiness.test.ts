// /ready's verdict from its sources. Envoy's admin is asked only once every
// type is ACKed: a startup probe polls /ready while Envoy applies its first
// config on its main thread, the thread that also serves admin. The admin here
// records what it was asked and answers as Envoy's admin does (the shapes of
// /config_dump?resource=dynamic_listeners and /stats?format=json); the
// in-process view with a real xDS server is in test/run/start-order.test.ts.
import { describe, expect, it } from 'vitest';
import { LISTENERS_NOT_ASKED, LISTENERS_OK_TTL_MS, ListenersCache, readiness, type ReadinessSources } from '../../src/run/readiness.js';
import type { AdminResponse } from '../../src/envoy/admin.js';
import type { AdsStatus, TypeAckStatus } from '../../src/xds/events.js';
import { TYPE_URL } from '../../src/xds/protos.js';

function typeStatus(desired: string, acked: string | null): TypeAckStatus {
  return {
    subscribed: { wildcard: true, names: [] },
    desiredVersion: desired,
    pendingNonce: acked === desired ? null : '1',
    sentVersion: desired,
    ackedVersion: acked,
    ackedAt: acked === null ? null : '2026-12-02T00:00:00.000Z',
    nackedVersion: null,
    lastError: null,
    nackedAt: null,
    inSync: acked === desired,
  };
}

/** One Envoy on a delta stream; LDS ACKed at `ldsAcked`. */
function status(ldsAcked: string | null): AdsStatus {
  return {
    types: {
      [TYPE_URL.cluster]: { version: 'c1', names: ['meshlet-blackhole'] },
      [TYPE_URL.listener]: { version: 'l1', names: ['meshlet-inbound'] },
      [TYPE_URL.secret]: { version: 's1', names: ['meshlet-workload'] },
    },
    envoys: [
      {
        streamId: 1,
        nodeId: 'meshlet~pod',
        kind: 'delta',
        connectedAt: '2026-12-02T00:00:00.000Z',
        types: {
          [TYPE_URL.cluster]: typeStatus('c1', 'c1'),
          [TYPE_URL.listener]: typeStatus('l1', ldsAcked),
          [TYPE_URL.secret]: typeStatus('s1', 's1'),
        },
      },
    ],
  };
}

/** Envoy's admin with meshlet-inbound in `state`, recording every path asked. */
function envoyAdmin(state: 'active' | 'warming'): { asked: string[]; admin: ReadinessSources['admin'] } {
  const asked: string[] = [];
  const admin = (urlPath: string): Promise<AdminResponse> => {
    asked.push(urlPath);
    if (urlPath.startsWith('/config_dump')) {
      const listener = state === 'active' ? { name: 'meshlet-inbound', active_state: { version_info: 'l1' } } : { name: 'meshlet-inbound', warming_state: {} };
      return Promise.resolve({ status: 200, body: JSON.stringify({ configs: [listener] }) });
    }
    const stats = [
      { name: 'listener_manager.lds.version_text', value: 'l1' },
      { name: 'listener_manager.listener_stopped', value: 0 },
      { name: 'server.state', value: 0 },
    ];
    return Promise.resolve({ status: 200, body: JSON.stringify({ stats }) });
  };
  return { asked, admin };
}

const sources = (s: AdsStatus, admin: ReadinessSources['admin']): ReadinessSources => ({
  status: () => s,
  listeners: () => ({ names: ['meshlet-inbound'], version: 'l1' }),
  admin,
});

describe('readiness', () => {
  it("does not ask Envoy's admin while a type is not ACKed, and says which one", async () => {
    const { asked, admin } = envoyAdmin('active');
    const report = await readiness(sources(status(null), admin));
    expect(report.ready).toBe(false);
    expect(report.checks['xdsAcked']).toEqual({ ok: false, detail: 'meshlet~pod: Listener wants l1, ACKed nothing' });
    expect(report.checks['envoyListeners']).toEqual(LISTENERS_NOT_ASKED);
    expect(asked).toEqual([]);
  });

  it("does not ask Envoy's admin when no Envoy is connected", async () => {
    const { asked, admin } = envoyAdmin('active');
    const report = await readiness(sources({ types: status(null).types, envoys: [] }, admin));
    expect(report.ready).toBe(false);
    expect(report.checks['xdsAcked']?.detail).toBe('no Envoy is connected to the xDS socket');
    expect(asked).toEqual([]);
  });

  it("asks Envoy's admin once everything is ACKed, and is ready only when Envoy reports the listeners active", async () => {
    const live = envoyAdmin('active');
    const ready = await readiness(sources(status('l1'), live.admin));
    expect(live.asked).toHaveLength(2);
    expect(live.asked.some((p) => p.startsWith('/config_dump?resource=dynamic_listeners'))).toBe(true);
    expect(live.asked.some((p) => p.startsWith('/stats?format=json'))).toBe(true);
    expect(ready).toEqual({
      ready: true,
      checks: {
        iptables: { ok: true, detail: 'not checked (--skip-iptables-check)' },
        xdsAcked: { ok: true, detail: 'every type ACKed at the current version' },
        envoyListeners: { ok: true, detail: '1 listeners active' },
      },
    });

    const warming = envoyAdmin('warming');
    const notYet = await readiness(sources(status('l1'), warming.admin));
    expect(warming.asked).toHaveLength(2);
    expect(notYet.ready).toBe(false);
    expect(notYet.checks['envoyListeners']).toEqual({ ok: false, detail: 'meshlet-inbound warming' });
  });
});

describe('ListenersCache', () => {
  /** A clock the test moves. */
  const clock = (): { now: () => number; advance: (ms: number) => void } => {
    let t = 1_000_000;
    return { now: () => t, advance: (ms) => (t += ms) };
  };

  it('gives concurrent callers one check: two admin requests, not two per caller', async () => {
    const live = envoyAdmin('active');
    const cache = new ListenersCache(live.admin);
    const answers = await Promise.all([1, 2, 3].map(() => cache.get(status('l1'), ['meshlet-inbound'], 'l1')));
    expect(answers.every((a) => a.ok)).toBe(true);
    expect(live.asked).toHaveLength(2);
  });

  it('keeps a positive answer for the TTL, for the same streams and LDS version only', async () => {
    const live = envoyAdmin('active');
    const c = clock();
    const cache = new ListenersCache(live.admin, c.now);
    expect(await cache.get(status('l1'), ['meshlet-inbound'], 'l1')).toEqual({ ok: true, detail: '1 listeners active' });
    c.advance(LISTENERS_OK_TTL_MS - 1);
    expect(await cache.get(status('l1'), ['meshlet-inbound'], 'l1')).toEqual({ ok: true, detail: '1 listeners active' });
    expect(live.asked).toHaveLength(2);
    // Another LDS version (a reload), or another stream (Envoy reconnected): asked again.
    await cache.get(status('l1'), ['meshlet-inbound'], 'l2');
    expect(live.asked).toHaveLength(4);
    const reconnected = status('l1');
    reconnected.envoys = reconnected.envoys.map((e) => ({ ...e, streamId: 2 }));
    await cache.get(reconnected, ['meshlet-inbound'], 'l1');
    expect(live.asked).toHaveLength(6);
    // The TTL passed: asked again.
    c.advance(LISTENERS_OK_TTL_MS);
    await cache.get(reconnected, ['meshlet-inbound'], 'l1');
    expect(live.asked).toHaveLength(8);
  });

  it('keeps no negative answer: a warming listener is asked about again at the next call', async () => {
    const warming = envoyAdmin('warming');
    const cache = new ListenersCache(warming.admin);
    expect((await cache.get(status('l1'), ['meshlet-inbound'], 'l1')).ok).toBe(false);
    expect((await cache.get(status('l1'), ['meshlet-inbound'], 'l1')).ok).toBe(false);
    expect(warming.asked).toHaveLength(4);
  });

  it('readiness() takes the listeners answer from the cache it is given, and still asks nothing before the ACKs', async () => {
    const live = envoyAdmin('active');
    const cache = new ListenersCache(live.admin);
    const notAcked = await readiness({ ...sources(status(null), live.admin), listenersCache: cache });
    expect(notAcked.checks['envoyListeners']).toEqual(LISTENERS_NOT_ASKED);
    expect(live.asked).toEqual([]);
    await cache.get(status('l1'), ['meshlet-inbound'], 'l1');
    const ready = await readiness({ ...sources(status('l1'), live.admin), listenersCache: cache });
    expect(ready.ready).toBe(true);
    expect(live.asked).toHaveLength(2);
  });
});
