// What a peer on the xDS socket (a compromised Envoy, uid 1337) can make the
// server keep: every bound below was an attack that grew meshlet's heap by
// hundreds of MiB or blocked its event loop for seconds. Real grpc-js streams
// on a real Unix socket; the requests are built with protobufjs reflection.
import { describe, expect, it } from 'vitest';
import { MAX_SUBSCRIBED_NAMES } from '../../src/xds/interest.js';
import { MAX_PEER_TEXT } from '../../src/xds/stream.js';
import { codec, MAX_REQUEST_ELEMENTS } from '../../src/xds/service.js';
import { TYPE } from '../../src/xds/protos.js';
import * as reflect from '../../src/xds/reflect.js';
import { CDS, SDS, adsHarness, cluster, secret } from './ads-fixtures.js';
import { names, waitFor } from '../helpers/xds-client.js';

const RESOURCE_EXHAUSTED = 8;

describe('ADS server limits against a hostile peer', () => {
  const h = adsHarness();

  it("keeps and reports a NACK's error cut to MAX_PEER_TEXT characters, saying how long it was", async () => {
    await h.start({ clusters: [cluster('c1')] });
    const envoy = h.connect().delta('envoy');
    envoy.request(CDS);
    const res = await envoy.next();
    const nacked = waitFor(h.server, 'nack');
    envoy.nack(res, 'x'.repeat(1_000_000));
    const { error } = await nacked;
    expect(error.length).toBeLessThan(MAX_PEER_TEXT + 40);
    expect(error).toBe(`${'x'.repeat(MAX_PEER_TEXT)}... (1000000 characters)`);
    expect(h.server.status().envoys[0]?.types[CDS]?.lastError).toBe(error);
  });

  it('ends a Delta stream that subscribes to more than MAX_SUBSCRIBED_NAMES names of one type with RESOURCE_EXHAUSTED; the server serves on', async () => {
    await h.start({ secrets: [secret('s1')] });
    const client = h.connect();
    const hostile = client.delta('hostile');
    hostile.request(SDS, { subscribe: ['s1'] });
    await hostile.next();
    // Unknown names, a batch at a time, as the attack sent them: each is kept for the stream's life.
    const batch = (from: number): string[] => Array.from({ length: 5_000 }, (_, i) => `nothing-${from + i}`);
    for (let n = 0; n <= MAX_SUBSCRIBED_NAMES; n += 5_000) hostile.request(SDS, { subscribe: batch(n) });
    const status = await hostile.finished;
    expect(status.code).toBe(RESOURCE_EXHAUSTED);
    expect(status.details).toContain(`more than ${MAX_SUBSCRIBED_NAMES} resource names`);
    expect(h.server.status().envoys).toHaveLength(0);
    const envoy = client.delta('envoy');
    envoy.request(SDS, { subscribe: ['s1'] });
    expect(names(await envoy.next())).toEqual(['s1']);
  });

  it('refuses a request holding more than MAX_REQUEST_ELEMENTS names with RESOURCE_EXHAUSTED, before anything is kept', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const client = h.connect();
    const hostile = client.delta('hostile');
    hostile.request(SDS, { subscribe: Array.from({ length: MAX_REQUEST_ELEMENTS + 1 }, (_, i) => `n${i}`) });
    const status = await hostile.finished;
    expect(status.code).toBe(RESOURCE_EXHAUSTED);
    expect(status.details).toContain(`more than ${MAX_REQUEST_ELEMENTS}`);
    const envoy = client.delta('envoy');
    envoy.request(CDS);
    expect(names(await envoy.next())).toEqual(['c1']);
  });

  it("skips a NACK status's details and the resource locators on the wire: more empty entries than the element limit decode to nothing", () => {
    // Each empty Any is 2 bytes on the wire; decoded, it was an object and a Buffer (the attack: 3.8 MB made 480 MiB).
    const empties = Array.from({ length: 3 * MAX_REQUEST_ELEMENTS }, () => ({ type_url: '', value: Buffer.alloc(0) }));
    const locators = Array.from({ length: 2 * MAX_REQUEST_ELEMENTS }, () => ({ name: '' }));
    for (const type of [TYPE.discoveryRequest, TYPE.deltaRequest]) {
      const bytes = reflect.codec(type).serialize({
        type_url: CDS,
        response_nonce: '1',
        error_detail: { code: 3, message: 'bad', details: empties },
        ...(type === TYPE.discoveryRequest ? { resource_locators: locators } : { resource_locators_subscribe: locators }),
      });
      expect(bytes.length, type).toBeGreaterThan(8 * MAX_REQUEST_ELEMENTS);
      const decoded = codec<Record<string, unknown>>(type, MAX_REQUEST_ELEMENTS).deserialize(bytes);
      expect(decoded['error_detail'], type).toEqual({ code: 3, message: 'bad', details: [] });
      expect(decoded['resource_locators'] ?? decoded['resource_locators_subscribe'], type).toEqual([]);
      expect(decoded['response_nonce'], type).toBe('1');
    }
  });
});
