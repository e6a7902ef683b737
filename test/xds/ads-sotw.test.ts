// State-of-the-world ADS over a real grpc-js stream on a real Unix socket.
import { describe, expect, it } from 'vitest';
import type { DiscoveryResponse } from '../../src/xds/service.js';
import { CDS, LDS, SDS, adsHarness, cluster, listener, recordEvents, secret, snap } from './ads-fixtures.js';
import { names, waitFor, type SotwClient } from '../helpers/xds-client.js';

const bytesOf = (res: DiscoveryResponse, i: number): Buffer => Buffer.from(res.resources[i]?.value ?? []);

/**
 * Every response `envoy` gets before the answer to a request for `flushType`,
 * sent now on the same stream. The server handles a stream's requests in
 * order, so anything it sends in reaction to an earlier request (an ACK, a
 * NACK) is queued before that answer: an empty result proves nothing was.
 */
async function sentBefore(envoy: SotwClient, flushType: string): Promise<DiscoveryResponse[]> {
  envoy.request(flushType);
  const got: DiscoveryResponse[] = [];
  for (let i = 0; i < 20; i++) {
    const res = await envoy.next();
    if (res.type_url === flushType) return got;
    got.push(res);
  }
  throw new Error(`no answer for ${flushType} among 20 responses: ${got.map((r) => r.type_url).join(', ')}`);
}

describe('ADS SotW', () => {
  const h = adsHarness();

  /** Subscribes and ACKs; returns the first response. */
  async function sync(envoy: SotwClient, typeUrl: string, subscribe: string[] = []): Promise<DiscoveryResponse> {
    const acked = waitFor(h.server, 'ack', (e) => e.typeUrl === typeUrl && e.nodeId === envoy.nodeId);
    envoy.request(typeUrl, { names: subscribe });
    const res = await envoy.next();
    envoy.ack(res, subscribe);
    await acked;
    return res;
  }

  it('serves every cluster to a wildcard request (empty list or "*") and does not answer the ACK', async () => {
    await h.start({ clusters: [cluster('c2'), cluster('c1')] });
    const events = recordEvents(h.server);
    const a = h.connect().sotw('envoy-a');
    const res = await sync(a, CDS);
    expect(names(res)).toEqual(['c1', 'c2']);
    expect(res.version_info).toBe(h.server.status().types[CDS]?.version);
    expect(res.nonce).not.toBe('');
    expect(events).toEqual(['response:cds', 'ack:cds']);
    // Nothing answers the ACK: the next thing on the stream is the answer to a later request.
    expect(await sentBefore(a, LDS)).toEqual([]);

    const b = h.connect().sotw('envoy-b');
    b.request(CDS, { names: ['*'] });
    expect(names(await b.next())).toEqual(['c1', 'c2']);
  });

  it('resends unchanged resources byte-identical and sends nothing when a rebuilt snapshot is equal', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const envoy = h.connect().sotw('envoy');
    const first = await sync(envoy, CDS);
    const events = recordEvents(h.server);

    h.server.setSnapshot(snap({ clusters: [cluster('c1')] }));
    expect(events).toEqual([]);

    h.server.setSnapshot(snap({ clusters: [cluster('c1'), cluster('c2')] }));
    const second = await envoy.next();
    expect(names(second)).toEqual(['c1', 'c2']);
    expect(second.version_info).not.toBe(first.version_info);
    expect(bytesOf(second, 0).equals(bytesOf(first, 0))).toBe(true);
  });

  it('serves named secrets only, answers new names, and treats an empty list as unsubscribe', async () => {
    await h.start({ secrets: [secret('s1'), secret('s2'), secret('s3')] });
    const events = recordEvents(h.server);
    const envoy = h.connect().sotw('envoy');
    envoy.request(SDS, { names: ['s1'] });
    const r1 = await envoy.next();
    expect(names(r1)).toEqual(['s1']);

    envoy.ack(r1, ['s1', 's2']); // ACK carrying a new name
    const r2 = await envoy.next();
    expect(names(r2)).toEqual(['s1', 's2']);
    expect(bytesOf(r2, 0).equals(bytesOf(r1, 0))).toBe(true);

    const unsubscribed = waitFor(h.server, 'ack', (e) => e.nonce === r2.nonce);
    envoy.ack(r2, []);
    await unsubscribed;
    h.server.setSnapshot(snap({ secrets: [secret('s1'), secret('s2'), secret('s3', 'NEW-CA')] }));
    expect(events.filter((e) => e === 'response:sds')).toHaveLength(2);
    expect(h.server.status().envoys[0]?.types[SDS]).toMatchObject({ subscribed: { wildcard: false, names: [] }, inSync: true });

    // Envoy dropped the secrets when it unsubscribed, so asking again for the
    // same names is answered, although their content did not change.
    envoy.request(SDS, { names: ['s1', 's2'], version: r2.version_info, nonce: r2.nonce });
    const r3 = await envoy.next();
    expect(names(r3)).toEqual(['s1', 's2']);
    expect(r3.version_info).toBe(r2.version_info);
  });

  it('does not treat an empty first SDS request as a wildcard', async () => {
    await h.start({ secrets: [secret('s1')] });
    const events = recordEvents(h.server);
    const envoy = h.connect().sotw('envoy');
    const seen = waitFor(h.server, 'request');
    envoy.request(SDS);
    expect(await seen).toMatchObject({ disposition: 'initial', typeUrl: SDS });
    expect(events).toEqual([]);
  });

  it('ignores a request whose nonce is not the latest sent for that type', async () => {
    await h.start({ secrets: [secret('s1'), secret('s2')] });
    const envoy = h.connect().sotw('envoy');
    const r1 = await sync(envoy, SDS, ['s1']);
    h.server.setSnapshot(snap({ secrets: [secret('s1', 'CA-2'), secret('s2')] }));
    const r2 = await envoy.next();
    const events = recordEvents(h.server);

    const stale = waitFor(h.server, 'request');
    envoy.request(SDS, { names: ['s1', 's2'], version: r1.version_info, nonce: r1.nonce });
    expect(await stale).toMatchObject({ disposition: 'stale', nonce: r1.nonce });
    expect(events).toEqual([]);
    expect(h.server.status().envoys[0]?.types[SDS]?.pendingNonce).toBe(r2.nonce);

    // The ACK of the latest response carries the names again, and is answered.
    envoy.ack(r2, ['s1', 's2']);
    expect(names(await envoy.next())).toEqual(['s1', 's2']);
    expect(events).toEqual(['ack:sds', 'response:sds']);
  });

  it('after a NACK keeps quiet until the desired state changes, and records the error', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const envoy = h.connect().sotw('envoy');
    const good = await sync(envoy, CDS);
    const nacked = waitFor(h.server, 'nack');

    h.server.setSnapshot(snap({ clusters: [cluster('c1'), cluster('bad', '0s')] }));
    const bad = await envoy.next();
    expect(bad.type_url).toBe(CDS);
    envoy.nack(bad, good.version_info, 'cluster bad: connect_timeout must be positive');
    const nack = await nacked;
    // A resend in reaction to the NACK would come before the answer to this later request on the same stream.
    expect(await sentBefore(envoy, LDS)).toEqual([]);
    const badVersion = h.server.status().types[CDS]?.version;
    expect(nack).toMatchObject({ nodeId: 'envoy', typeUrl: CDS, version: badVersion, error: 'cluster bad: connect_timeout must be positive' });
    expect(h.server.status().envoys[0]?.types[CDS]).toMatchObject({
      ackedVersion: good.version_info,
      nackedVersion: badVersion,
      lastError: 'cluster bad: connect_timeout must be positive',
      pendingNonce: null,
      inSync: false,
    });
    expect(h.server.status().envoys[0]?.types[CDS]?.nackedAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    // The same bad content again (a rebuilt, equal snapshot) is still not resent.
    const events = recordEvents(h.server);
    h.server.setSnapshot(snap({ clusters: [cluster('c1'), cluster('bad', '0s')] }));
    expect(events).toEqual([]);

    // A fix is a new desired state: sent once, ACKed.
    h.server.setSnapshot(snap({ clusters: [cluster('c1'), cluster('bad', '1s')] }));
    const fixed = await envoy.next();
    const acked = waitFor(h.server, 'ack');
    envoy.ack(fixed);
    expect((await acked).version).toBe(fixed.version_info);
    expect(h.server.status().envoys[0]?.types[CDS]).toMatchObject({ ackedVersion: fixed.version_info, inSync: true });
    expect(events).toEqual(['response:cds', 'ack:cds']);
  });

  it('pushes secrets, then clusters, then listeners, each only after the previous type is ACKed', async () => {
    await h.start();
    const envoy = h.connect().sotw('envoy');
    await sync(envoy, SDS, ['s1']);
    await sync(envoy, CDS);
    await sync(envoy, LDS);
    const events = recordEvents(h.server);

    h.server.setSnapshot(snap({ secrets: [secret('s1')], clusters: [cluster('c1')], listeners: [listener('l1', 15001)] }));
    expect(events).toEqual(['response:sds']);
    for (const type of [SDS, CDS, LDS]) {
      const res = await envoy.next();
      expect(res.type_url).toBe(type);
      const acked = waitFor(h.server, 'ack', (e) => e.typeUrl === type);
      envoy.ack(res, type === SDS ? ['s1'] : []);
      await acked;
    }
    expect(events).toEqual(['response:sds', 'ack:sds', 'response:cds', 'ack:cds', 'response:lds', 'ack:lds']);
  });

  it('holds the first LDS answer until CDS is ACKed, and a NACK releases the hold', async () => {
    await h.start({ clusters: [cluster('c1')], listeners: [listener('l1', 15001)] });
    const events = recordEvents(h.server);
    const envoy = h.connect().sotw('envoy');
    const ldsSeen = waitFor(h.server, 'request', (e) => e.typeUrl === LDS);
    envoy.request(CDS);
    envoy.request(LDS);
    await ldsSeen;
    expect(events).toEqual(['response:cds']);
    const cds = await envoy.next();
    envoy.ack(cds);
    const lds = await envoy.next();
    expect(lds.type_url).toBe(LDS);
    const ldsAcked = waitFor(h.server, 'ack', (e) => e.typeUrl === LDS);
    envoy.ack(lds);
    await ldsAcked;

    h.server.setSnapshot(snap({ clusters: [cluster('c1', '2s')], listeners: [listener('l1', 15002)] }));
    const cds2 = await envoy.next();
    expect(events.at(-1)).toBe('response:cds');
    envoy.nack(cds2, cds.version_info, 'rejected');
    const lds2 = await envoy.next();
    expect(lds2.type_url).toBe(LDS);
    expect(events.slice(-3)).toEqual(['response:cds', 'nack:cds', 'response:lds']);
  });

  it('uses a fresh nonce for every response on a stream', async () => {
    await h.start({ clusters: [cluster('c1')], secrets: [secret('s1')] });
    const envoy = h.connect().sotw('envoy');
    const nonces = [(await sync(envoy, CDS)).nonce, (await sync(envoy, SDS, ['s1'])).nonce];
    h.server.setSnapshot(snap({ clusters: [cluster('c2')], secrets: [secret('s1')] }));
    nonces.push((await envoy.next()).nonce);
    expect(new Set(nonces).size).toBe(3);
  });

  it('serves several Envoys at once and a reconnecting one, byte-identically', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const a = h.connect().sotw('envoy-a');
    const b = h.connect().sotw('envoy-b');
    const ra = await sync(a, CDS);
    await sync(b, CDS);
    expect(
      h.server
        .status()
        .envoys.map((e) => e.nodeId)
        .sort(),
    ).toEqual(['envoy-a', 'envoy-b']);

    h.server.setSnapshot(snap({ clusters: [cluster('c1'), cluster('c2')] }));
    const [pa, pb] = await Promise.all([a.next(), b.next()]);
    expect(names(pa)).toEqual(['c1', 'c2']);
    expect(pb.version_info).toBe(pa.version_info);
    a.ack(pa);

    const gone = waitFor(h.server, 'disconnect', (e) => e.nodeId === 'envoy-a');
    a.cancel();
    await gone;
    expect(h.server.status().envoys.map((e) => e.nodeId)).toEqual(['envoy-b']);

    // Envoy's first request on the new stream carries the version it holds.
    const again = h.connect().sotw('envoy-a');
    again.request(CDS, { version: pa.version_info });
    const re = await again.next();
    expect(re.version_info).toBe(pa.version_info);
    expect(bytesOf(re, 0).equals(bytesOf(ra, 0))).toBe(true);
    const envoyA = h.server.status().envoys.find((e) => e.nodeId === 'envoy-a');
    expect(envoyA?.types[CDS]).toMatchObject({ ackedVersion: pa.version_info, pendingNonce: re.nonce });
  });

  it('ignores types it does not serve', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const events = recordEvents(h.server);
    const envoy = h.connect().sotw('envoy');
    const seen = waitFor(h.server, 'request');
    envoy.request('type.googleapis.com/envoy.config.route.v3.RouteConfiguration', { names: ['r1'] });
    expect(await seen).toMatchObject({ disposition: 'unknown-type' });
    expect(events).toEqual([]);
  });
});
