// Incremental (Delta) ADS over a real grpc-js stream on a real Unix socket.
import { describe, expect, it } from 'vitest';
import type { DeltaDiscoveryResponse } from '../../src/xds/service.js';
import { CDS, LDS, SDS, adsHarness, cluster, listener, recordEvents, secret, snap } from './ads-fixtures.js';
import { names, waitFor, type DeltaClient } from '../helpers/xds-client.js';

const bytesOf = (res: DeltaDiscoveryResponse, name: string): Buffer => Buffer.from(res.resources.find((r) => r.name === name)?.resource.value ?? []);

describe('ADS Delta', () => {
  const h = adsHarness();

  async function ackNext(envoy: DeltaClient): Promise<DeltaDiscoveryResponse> {
    const res = await envoy.next();
    const acked = waitFor(h.server, 'ack', (e) => e.nonce === res.nonce && e.nodeId === envoy.nodeId);
    envoy.ack(res);
    await acked;
    return res;
  }

  it('serves a wildcard CDS, then only changed resources, and removed_resources for dropped ones', async () => {
    await h.start({ clusters: [cluster('c1'), cluster('c2')] });
    const envoy = h.connect().delta('envoy');
    envoy.request(CDS);
    const first = await ackNext(envoy);
    const typeSnap = h.server.currentSnapshot().types[CDS];
    expect(names(first)).toEqual(['c1', 'c2']);
    expect(first.removed_resources).toEqual([]);
    expect(first.system_version_info).toBe(typeSnap?.version);
    expect(first.resources.map((r) => r.version)).toEqual([typeSnap?.resources.get('c1')?.version, typeSnap?.resources.get('c2')?.version]);
    const events = recordEvents(h.server);

    h.server.setSnapshot(snap({ clusters: [cluster('c1'), cluster('c2')] }));
    expect(events).toEqual([]);

    h.server.setSnapshot(snap({ clusters: [cluster('c1', '3s'), cluster('c2')] }));
    const changed = await ackNext(envoy);
    expect(names(changed)).toEqual(['c1']);
    expect(bytesOf(changed, 'c1').equals(bytesOf(first, 'c1'))).toBe(false);

    h.server.setSnapshot(snap({ clusters: [cluster('c1', '3s')] }));
    const dropped = await ackNext(envoy);
    expect(dropped.resources).toEqual([]);
    expect(dropped.removed_resources).toEqual(['c2']);
    expect(h.server.status().envoys[0]?.types[CDS]).toMatchObject({ ackedVersion: dropped.system_version_info, inSync: true });
  });

  it('subscribes and unsubscribes named secrets', async () => {
    await h.start({ secrets: [secret('s1'), secret('s2')] });
    const envoy = h.connect().delta('envoy');
    envoy.request(SDS, { subscribe: ['s1'] });
    expect(names(await ackNext(envoy))).toEqual(['s1']);

    envoy.request(SDS, { subscribe: ['s2'] });
    const s2 = await ackNext(envoy);
    expect(names(s2)).toEqual(['s2']);

    const events = recordEvents(h.server);
    const unsub = waitFor(h.server, 'request', (e) => e.unsubscribe.length > 0);
    envoy.request(SDS, { unsubscribe: ['s1'] });
    expect(await unsub).toMatchObject({ disposition: 'subscription' });
    h.server.setSnapshot(snap({ secrets: [secret('s1', 'CA-2'), secret('s2')] }));
    expect(events).toEqual([]);

    // Subscribing to a name Envoy already holds is answered: "the server must still provide those resources".
    envoy.request(SDS, { subscribe: ['s2'] });
    const again = await ackNext(envoy);
    expect(names(again)).toEqual(['s2']);
    expect(bytesOf(again, 's2').equals(bytesOf(s2, 's2'))).toBe(true);

    // A name that does not exist yet is remembered and sent when it appears.
    const seen = waitFor(h.server, 'request', (e) => e.subscribe.includes('s9'));
    envoy.request(SDS, { subscribe: ['s9'] });
    await seen;
    expect(events).toEqual(['response:sds', 'ack:sds']);
    h.server.setSnapshot(snap({ secrets: [secret('s1', 'CA-2'), secret('s2'), secret('s9')] }));
    expect(names(await envoy.next())).toEqual(['s9']);
  });

  it('honours initial_resource_versions on reconnect', async () => {
    await h.start({ clusters: [cluster('c1'), cluster('c2')] });
    const current = h.server.currentSnapshot().types[CDS]!;
    const envoy = h.connect().delta('envoy');
    envoy.request(CDS, { initial: { c1: current.resources.get('c1')!.version, c2: 'older', gone: 'whatever' } });
    const res = await envoy.next();
    expect(names(res)).toEqual(['c2']);
    expect(res.removed_resources).toEqual(['gone']);

    // Everything already current: still one (empty) answer, so Envoy's init can complete.
    const other = h.connect().delta('envoy-2');
    const initial = Object.fromEntries([...current.resources.values()].map((r) => [r.name, r.version]));
    other.request(CDS, { initial });
    const empty = await other.next();
    expect(empty.resources).toEqual([]);
    expect(empty.removed_resources).toEqual([]);
    expect(empty.system_version_info).toBe(current.version);
  });

  it('after a NACK resends nothing until the desired state changes, and never the rejected resource unchanged', async () => {
    await h.start({ clusters: [cluster('c1'), cluster('c2')] });
    const envoy = h.connect().delta('envoy');
    envoy.request(CDS);
    const good = await ackNext(envoy);

    h.server.setSnapshot(snap({ clusters: [cluster('c1', '0s'), cluster('c2')] }));
    const bad = await envoy.next();
    expect(names(bad)).toEqual(['c1']);
    const nacked = waitFor(h.server, 'nack');
    envoy.nack(bad, 'c1: connect_timeout must be positive');
    expect(await nacked).toMatchObject({ version: bad.system_version_info, nonce: bad.nonce, error: 'c1: connect_timeout must be positive' });
    // A resend in reaction to the NACK would be queued before the answer to this later request on the same stream.
    envoy.request(LDS);
    const flush = await envoy.next();
    expect(flush.type_url).toBe(LDS);
    envoy.ack(flush);
    expect(envoy.received).toHaveLength(3);
    expect(h.server.status().envoys[0]?.types[CDS]).toMatchObject({
      ackedVersion: good.system_version_info,
      nackedVersion: bad.system_version_info,
      lastError: 'c1: connect_timeout must be positive',
      inSync: false,
    });

    // Another resource changes: only it is sent, not the rejected c1 again.
    h.server.setSnapshot(snap({ clusters: [cluster('c1', '0s'), cluster('c2', '2s')] }));
    expect(names(await ackNext(envoy))).toEqual(['c2']);
    // The fix is sent.
    h.server.setSnapshot(snap({ clusters: [cluster('c1', '1s'), cluster('c2', '2s')] }));
    const fixed = await ackNext(envoy);
    expect(names(fixed)).toEqual(['c1']);
    expect(h.server.status().envoys[0]?.types[CDS]).toMatchObject({ ackedVersion: fixed.system_version_info, inSync: true });
  });

  it('pushes secrets, clusters, listeners in order, each after the previous ACK', async () => {
    await h.start();
    const envoy = h.connect().delta('envoy');
    envoy.request(SDS, { subscribe: ['s1'] });
    await ackNext(envoy);
    envoy.request(CDS);
    await ackNext(envoy);
    envoy.request(LDS);
    await ackNext(envoy);
    const events = recordEvents(h.server);

    h.server.setSnapshot(snap({ secrets: [secret('s1')], clusters: [cluster('c1')], listeners: [listener('l1', 15001)] }));
    expect(events).toEqual(['response:sds']);
    for (const type of [SDS, CDS, LDS]) expect((await ackNext(envoy)).type_url).toBe(type);
    expect(events).toEqual(['response:sds', 'ack:sds', 'response:cds', 'ack:cds', 'response:lds', 'ack:lds']);
  });

  it('ignores an ACK with a stale nonce but keeps its subscription change', async () => {
    await h.start({ secrets: [secret('s1'), secret('s3')] });
    const envoy = h.connect().delta('envoy');
    envoy.request(SDS, { subscribe: ['s1'] });
    const r1 = await ackNext(envoy);
    h.server.setSnapshot(snap({ secrets: [secret('s1', 'CA-2'), secret('s3')] }));
    const r2 = await envoy.next();
    const events = recordEvents(h.server);

    const stale = waitFor(h.server, 'request');
    envoy.request(SDS, { nonce: r1.nonce, subscribe: ['s3'] });
    expect(await stale).toMatchObject({ disposition: 'stale' });
    expect(events).toEqual([]);
    expect(h.server.status().envoys[0]?.types[SDS]?.pendingNonce).toBe(r2.nonce);

    envoy.ack(r2);
    expect(names(await envoy.next())).toEqual(['s3']);
    expect(events).toEqual(['ack:sds', 'response:sds']);
  });

  it('keeps SotW and Delta Envoys apart in status()', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const d = h.connect().delta('envoy-d');
    d.request(CDS);
    await ackNext(d);
    const s = h.connect().sotw('envoy-s');
    s.request(CDS);
    await s.next();
    const kinds = Object.fromEntries(h.server.status().envoys.map((e) => [e.nodeId, e.kind]));
    expect(kinds).toEqual({ 'envoy-d': 'delta', 'envoy-s': 'sotw' });
  });
});
