// The HPACK decoder on the worked examples of RFC 7541 Appendix C (one
// connection's blocks in order, so the dynamic table carries from one to the
// next, with eviction at a 256-byte table), and its bounds.
import { describe, expect, it } from 'vitest';
import { encodeHeaders, HeaderListTooLarge, HpackDecoder, HpackError } from '../../src/xds/h2/hpack.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('HPACK decoder', () => {
  it('decodes the RFC 7541 C.3 requests (no Huffman) with the dynamic table carried between blocks', () => {
    const d = new HpackDecoder(4096, 65536);
    expect(d.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    expect(d.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
      ['cache-control', 'no-cache'],
    ]);
    expect(d.decode(hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
    expect(d.dynamicEntries).toBe(3);
  });

  it('decodes the RFC 7541 C.5 responses, evicting the oldest entries from a 256-byte table', () => {
    const d = new HpackDecoder(256, 65536);
    const date = 'Mon, 21 Oct 2013 20:13:21 GMT';
    expect(
      d.decode(
        hex(
          '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e' +
            '1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        ),
      ),
    ).toEqual([
      [':status', '302'],
      ['cache-control', 'private'],
      ['date', date],
      ['location', 'https://www.example.com'],
    ]);
    expect(d.dynamicEntries).toBe(4);
    // ":status 307" goes in and ":status 302" (the oldest) is evicted to stay within 256 bytes.
    expect(d.decode(hex('4803 3330 37c1 c0bf'))).toEqual([
      [':status', '307'],
      ['cache-control', 'private'],
      ['date', date],
      ['location', 'https://www.example.com'],
    ]);
    expect(d.dynamicEntries).toBe(4);
  });

  it('refuses an index past the table, a size update above our limit or after a field, and a truncated block', () => {
    expect(() => new HpackDecoder(4096, 65536).decode(hex('be'))).toThrow(HpackError);
    expect(() => new HpackDecoder(4096, 65536).decode(hex('80'))).toThrow(HpackError);
    expect(() => new HpackDecoder(4096, 65536).decode(hex('3fe21f'))).toThrow(/above our limit/);
    expect(() => new HpackDecoder(4096, 65536).decode(hex('82 20'))).toThrow(/after a header field/);
    expect(() => new HpackDecoder(4096, 65536).decode(hex('00 05 6162'))).toThrow(HpackError);
    // An integer that keeps going past 2^28.
    expect(() => new HpackDecoder(4096, 65536).decode(hex('ff ff ff ff ff ff 01'))).toThrow(/too large/);
    // A size update to 0 empties the table.
    const d = new HpackDecoder(4096, 65536);
    d.decode(hex('4003 6162 6303 6465 66'));
    expect(d.dynamicEntries).toBe(1);
    d.decode(hex('20'));
    expect(d.dynamicEntries).toBe(0);
  });

  it('stops a header list past its budget, counting 32 bytes per field as SETTINGS_MAX_HEADER_LIST_SIZE does', () => {
    // ":method: GET" is 7 + 3 + 32 = 42 bytes; 100 of them is 4200.
    const block = Buffer.alloc(100, 0x82);
    expect(new HpackDecoder(4096, 4200).decode(block)).toHaveLength(100);
    expect(() => new HpackDecoder(4096, 4199).decode(block)).toThrow(HeaderListTooLarge);
  });

  it('encodes literals that it decodes back, and refuses a block over its bound', () => {
    const headers: [string, string][] = [
      [':status', '200'],
      ['grpc-message', 'x'.repeat(300)],
    ];
    expect(new HpackDecoder(4096, 65536).decode(encodeHeaders(headers, 1024))).toEqual(headers);
    expect(() => encodeHeaders(headers, 100)).toThrow(/larger than 100/);
  });
});
