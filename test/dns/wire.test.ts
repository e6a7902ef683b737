// The DNS codec against hand-written wire bytes (RFC 1035 4.1), compression
// pointers in both directions, and every way a message can be malformed.
import { describe, expect, it } from 'vitest';
import {
  CLASS,
  DnsFormatError,
  TYPE,
  decodeHeader,
  decodeMessage,
  ednsOf,
  encodeMessage,
  nameFromString,
  nameToString,
  optRecord,
  sameName,
  type Message,
} from '../../src/dns/wire.js';
import { FrameReader, frame } from '../../src/dns/frame.js';
import { pointerChain } from './helpers.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// dig-style query for "example.test" A, id 0xabcd, RD set.
const QUERY = hex('abcd 0100 0001 0000 0000 0000  07 6578616d706c65 04 74657374 00  0001 0001');

describe('dns wire format', () => {
  it('decodes a query written by hand', () => {
    const m = decodeMessage(QUERY);
    expect(m.header).toEqual({ id: 0xabcd, qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, z: false, ad: false, cd: false, rcode: 0 });
    expect(m.questions).toHaveLength(1);
    expect(nameToString(m.questions[0]?.name ?? [])).toBe('example.test');
    expect(m.questions[0]).toMatchObject({ type: TYPE.A, class: CLASS.IN });
  });

  it('encodes the same bytes back', () => {
    expect(toHex(encodeMessage(decodeMessage(QUERY)))).toBe(toHex(QUERY));
  });

  it('compresses a repeated name into a pointer to the question (0xc00c)', () => {
    const m: Message = {
      header: { ...decodeMessage(QUERY).header, qr: true },
      questions: [{ name: nameFromString('example.test'), type: TYPE.A, class: CLASS.IN }],
      answers: [{ name: nameFromString('EXAMPLE.test'), type: TYPE.A, class: CLASS.IN, ttl: 5, data: new Uint8Array([127, 137, 0, 1]) }],
      authorities: [],
      additionals: [{ name: nameFromString('www.example.test'), type: TYPE.A, class: CLASS.IN, ttl: 0x01020304, data: new Uint8Array([1, 2, 3, 4]) }],
    };
    const bytes = encodeMessage(m);
    // answer: pointer to offset 12, type A, class IN, ttl 5, rdlength 4, 127.137.0.1
    expect(toHex(bytes)).toContain('c00c00010001000000050004' + '7f890001');
    // additional: "www" then a pointer to the question's name
    expect(toHex(bytes)).toContain('03777777c00c');
    const back = decodeMessage(bytes);
    expect(back.answers.map((a) => nameToString(a.name))).toEqual(['example.test']);
    expect(back.additionals[0]?.ttl).toBe(0x01020304);
    expect(nameToString(back.additionals[0]?.name ?? [])).toBe('www.example.test');
  });

  it('follows a chain of pointers that each point further back', () => {
    // name at 12: "test"; at 22: "example" + ptr(12); at 36: "www" + ptr(22)
    const header = '0001 8180 0002 0000 0000 0000';
    const q1 = '04 74657374 00 0001 0001'; // offset 12..21
    const q2 = '07 6578616d706c65 c00c 0001 0001'; // offset 22: example.<ptr 12>
    const bytes = hex(header + q1 + q2);
    const m = decodeMessage(bytes);
    expect(m.questions.map((q) => nameToString(q.name))).toEqual(['test', 'example.test']);
    const three = hex(header.replace('0002', '0003') + q1 + q2 + '03 777777 c016 0001 0001');
    expect(decodeMessage(three).questions.map((q) => nameToString(q.name))).toEqual(['test', 'example.test', 'www.example.test']);
  });

  it.each([
    ['shorter than a header', 'abcd 0100 0001', /ends inside the header/],
    ['a question count larger than the message', 'abcd 0100 0002 0000 0000 0000 01 61 00 0001 0001', /ends inside a name/],
    ['a truncated question', 'abcd 0100 0001 0000 0000 0000 01 61 00 00', /ends inside a question/],
    ['a label running past the end', 'abcd 0100 0001 0000 0000 0000 05 6162', /ends inside a label/],
    ['a pointer to itself', 'abcd 0100 0001 0000 0000 0000 c00c 0001 0001', /points forward or into itself/],
    ['a pointer forward', 'abcd 0100 0001 0000 0000 0000 c010 0001 0001 00', /points forward/],
    ['a pointer loop through two names', 'abcd 0100 0002 0000 0000 0000 01 61 c016 0001 0001 01 62 c00c 0001 0001', /points forward or into itself/],
    ['a pointer into the header', 'abcd 0100 0002 0000 0000 0000 01 61 00 0001 0001 c002 0001 0001', /into the header/],
    ['a half pointer at the end', 'abcd 0100 0001 0000 0000 0000 c0', /inside a compression pointer/],
    ['an extended label type (0x40)', 'abcd 0100 0001 0000 0000 0000 41 00 0001 0001', /unsupported label type 0x40/],
    ['a reserved label type (0x80)', 'abcd 0100 0001 0000 0000 0000 80 00 0001 0001', /unsupported label type 0x80/],
    ['record data longer than the message', 'abcd 8100 0000 0001 0000 0000 00 0001 0001 00000005 0010 7f00', /ends inside record data/],
    [
      'a name longer than 255 octets',
      `abcd 0100 0001 0000 0000 0000 ${'3f' + '61'.repeat(63)}${'3f' + '61'.repeat(63)}${'3f' + '61'.repeat(63)}${'3f' + '61'.repeat(63)} 00 0001 0001`,
      /longer than 255/,
    ],
  ])('refuses %s', (_what, bytes, why) => {
    expect(() => decodeMessage(hex(bytes))).toThrow(DnsFormatError);
    expect(() => decodeMessage(hex(bytes))).toThrow(why);
  });

  it('follows at most 127 compression pointers in one name: a longer chain costs the decoder work and no octets', () => {
    // The last record's name is one pointer to the chain's end: 1 + chain jumps.
    const ok = decodeMessage(pointerChain(126, 1));
    expect(ok.answers.map((a) => a.name)).toEqual([[], []]);
    expect(() => decodeMessage(pointerChain(127, 1))).toThrow(/follows more than 127 compression pointers/);
  });

  it('bounds the work of a whole message: its names take at most 2 steps (labels and pointers) per byte', () => {
    // 600 records of 12 bytes, each walking 101 pointers: 60,600 steps in 7,428 bytes. (An earlier decoder walked a
    // 64 KB message built this way for seconds.)
    const chain = pointerChain(100, 600);
    expect(chain.length).toBe(7428);
    expect(() => decodeMessage(chain)).toThrow(/more than 2 steps per byte/);
    // Real messages stay far below: a reply of 100 records named by a pointer to the question's three labels.
    const q = decodeMessage(QUERY);
    const a = { name: nameFromString('www.example.test'), type: TYPE.A, class: CLASS.IN, ttl: 5, data: new Uint8Array(4) };
    const reply = encodeMessage({ ...q, questions: [{ ...q.questions[0]!, name: a.name }], answers: Array.from({ length: 100 }, () => a) });
    expect(decodeMessage(reply).answers).toHaveLength(100);
  });

  it('accepts a name of exactly 255 octets, and ignores bytes after the last record', () => {
    // 3 x 63-octet labels + a 61-octet label: 4*1 + 3*63 + 61 + 1 (root) = 255
    const name = `${('3f' + '61'.repeat(63)).repeat(3)}3d${'61'.repeat(61)}00`;
    const m = decodeMessage(hex(`abcd 0100 0001 0000 0000 0000 ${name} 0001 0001 deadbeef`));
    expect(m.questions[0]?.name.length).toBe(4);
  });

  it('writes any octet of a label in presentation format', () => {
    const name = [new Uint8Array([0x61, 0x2e, 0x62]), new Uint8Array([0x5c, 0x00, 0x7f, 0x20, 0x41])];
    expect(nameToString(name)).toBe('a\\.b.\\\\\\000\\127\\032A');
    expect(nameToString([])).toBe('');
  });

  it('compares names case-insensitively, ASCII only (RFC 4343)', () => {
    expect(sameName(nameFromString('Emoji-SVC.test'), nameFromString('emoji-svc.TEST'))).toBe(true);
    expect(sameName([new Uint8Array([0xc4])], [new Uint8Array([0xe4])])).toBe(false);
    expect(sameName(nameFromString('a.b'), [new Uint8Array([0x61, 0x2e, 0x62])])).toBe(false);
  });

  it('does not compress two different names into one (labels are length-prefixed in the key)', () => {
    const a = [new Uint8Array([0x61, 0x00, 0x62])];
    const b = [new Uint8Array([0x61]), new Uint8Array([0x62])];
    const m: Message = {
      header: decodeMessage(QUERY).header,
      questions: [
        { name: a, type: 1, class: 1 },
        { name: b, type: 1, class: 1 },
      ],
      answers: [],
      authorities: [],
      additionals: [],
    };
    const back = decodeMessage(encodeMessage(m));
    expect(back.questions.map((q) => q.name.map((l) => toHex(l)))).toEqual([['610062'], ['61', '62']]);
  });

  it('reads and writes the EDNS OPT record (RFC 6891 6.1.3)', () => {
    const opt = optRecord({ udpSize: 4096, extendedRcode: 1, version: 0, dnssecOk: true });
    expect(opt).toMatchObject({ name: [], type: TYPE.OPT, class: 4096, ttl: 0x01008000 });
    expect(ednsOf(opt)).toEqual({ udpSize: 4096, extendedRcode: 1, version: 0, dnssecOk: true });
    expect(ednsOf({ ...opt, ttl: 0x00010000 })).toMatchObject({ version: 1, dnssecOk: false, extendedRcode: 0 });
  });

  it('decodes every header flag', () => {
    const h = decodeHeader(hex('ffff ffff 0000 0000 0000 0000'));
    expect(h).toMatchObject({ id: 0xffff, qr: true, opcode: 15, aa: true, tc: true, rd: true, ra: true, z: true, ad: true, cd: true, rcode: 15 });
    const m = decodeMessage(hex('ffff ffff 0000 0000 0000 0000'));
    expect(toHex(encodeMessage(m))).toBe('ffffffff0000000000000000');
  });

  it('refuses to encode a label longer than 63 octets or a name longer than 255', () => {
    const m = (name: Uint8Array[]): Message => ({
      header: decodeMessage(QUERY).header,
      questions: [{ name, type: 1, class: 1 }],
      answers: [],
      authorities: [],
      additionals: [],
    });
    expect(() => encodeMessage(m([new Uint8Array(64)]))).toThrow(/1-63/);
    expect(() => encodeMessage(m(Array.from({ length: 5 }, () => new Uint8Array(63))))).toThrow(/255/);
  });
});

describe('dns over tcp framing', () => {
  const messages = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(300).fill(7), new Uint8Array([9])];
  const stream = Buffer.concat(messages.map((m) => frame(m)));

  it('gives back every message whole, however the stream is cut: at any one byte, or a byte at a time with empty chunks between', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const r = new FrameReader();
      const got = [...r.push(stream.subarray(0, cut)), ...r.push(stream.subarray(cut))];
      expect(got.map((m) => toHex(m))).toEqual(messages.map((m) => toHex(m)));
      expect(r.buffered).toBe(0);
    }
    const r = new FrameReader();
    const got: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i++) {
      got.push(...r.push(new Uint8Array(0)), ...r.push(stream.subarray(i, i + 1)));
    }
    expect(r.buffered).toBe(0);
    expect(got.map((m) => toHex(m))).toEqual(messages.map((m) => toHex(m)));
  });

  it('counts the bytes of a message still to come', () => {
    const r = new FrameReader();
    expect(r.push(stream.subarray(0, 4))).toEqual([]);
    expect(r.buffered).toBe(4);
  });
});
