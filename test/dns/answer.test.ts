// What meshlet does with each kind of message: answer (A for route names,
// NODATA for every other type), forward, make up an error, or drop.
import { describe, expect, it } from 'vitest';
import { decide, serverFailure } from '../../src/dns/answer.js';
import { buildNameTable } from '../../src/dns/table.js';
import { CLASS, RCODE, TYPE, decodeMessage, encodeMessage, nameFromString, optRecord, type ResourceRecord } from '../../src/dns/wire.js';
import type { EgressRoute } from '../../src/config/model.js';
import { pointerChain, query, summary } from './helpers.js';

const routes: EgressRoute[] = [{ name: 'emoji', listenIp: '127.137.0.1', remoteHost: 'emoji-svc', expectedSans: [], names: ['emoji-svc'] }];
const opts = { table: buildNameTable(routes, ['demo.svc.cluster.local']), ttl: 5 };
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

function answered(packet: Uint8Array): ReturnType<typeof summary> & { route?: string | undefined } {
  const d = decide(packet, opts);
  if (d.kind !== 'answer') throw new Error(`expected an answer, got ${d.kind}`);
  return { ...summary(d.response), route: d.route };
}

describe('answering', () => {
  it('answers A for a route name with the listen address, authoritative, with the configured TTL', () => {
    const r = answered(query('emoji-svc.demo.svc.cluster.local', { id: 0x4242 }));
    expect(r).toMatchObject({ id: 0x4242, rcode: RCODE.NOERROR, aa: true, tc: false, question: 'emoji-svc.demo.svc.cluster.local', route: 'emoji' });
    expect(r.answers).toEqual([{ name: 'emoji-svc.demo.svc.cluster.local', type: TYPE.A, ttl: 5, data: '127.137.0.1' }]);
    expect(r.opt).toBeUndefined();
  });

  it('keeps the case the client used (0x20 randomization), in the question and the answer', () => {
    const r = answered(query('EmOjI-sVc'));
    expect(r.question).toBe('EmOjI-sVc');
    expect(r.answers[0]?.name).toBe('EmOjI-sVc');
  });

  it('echoes RD and sets RA', () => {
    const d = decide(query('emoji-svc', { rd: false }), opts);
    const h = d.kind === 'answer' ? decodeMessage(d.response).header : undefined;
    expect(h).toMatchObject({ qr: true, rd: false, ra: true, opcode: 0 });
  });

  it.each([
    ['AAAA (the listen address is IPv4)', TYPE.AAAA],
    ['MX', TYPE.MX],
    ['TXT', TYPE.TXT],
    ['HTTPS (its address hints would bypass the route)', TYPE.HTTPS],
    ['CNAME', TYPE.CNAME],
  ])('answers NODATA (NOERROR, no records) for %s', (_what, type) => {
    const r = answered(query('emoji-svc', { type }));
    expect(r).toMatchObject({ rcode: RCODE.NOERROR, aa: true, answers: [] });
  });

  it('answers ANY with the A record (RFC 8482 allows a subset)', () => {
    expect(answered(query('emoji-svc', { type: TYPE.ANY })).answers).toHaveLength(1);
  });

  it('uses TTL 0 when configured', () => {
    const d = decide(query('emoji-svc'), { ...opts, ttl: 0 });
    expect(d.kind === 'answer' && summary(d.response).answers[0]?.ttl).toBe(0);
  });

  it('adds its own OPT (1232 bytes, version 0, no DO) when the query had EDNS', () => {
    const r = answered(query('emoji-svc', { edns: { udpSize: 4096, dnssecOk: true } }));
    expect(r.opt).toEqual({ udpSize: 1232, ttl: 0 });
  });

  it('stays far below 512 bytes even for the longest name', () => {
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(51)}.emoji-svc`;
    const t = buildNameTable([{ ...routes[0]!, names: [long] }], []);
    const d = decide(query(long, { edns: {} }), { table: t, ttl: 5 });
    expect(d.kind).toBe('answer');
    if (d.kind === 'answer') expect(d.response.length).toBeLessThan(512);
  });
});

describe('forwarding', () => {
  it.each([
    ['a name that is not a route name', query('other-svc.demo.svc.cluster.local')],
    ['AAAA for another name', query('other-svc', { type: TYPE.AAAA })],
    ['a route name in class CH', query('emoji-svc', { class: 3 })],
    ['a PTR query', query('1.0.137.127.in-addr.arpa', { type: TYPE.PTR })],
    ['the root', query('.', { type: TYPE.NS, edns: {} })],
  ])('forwards %s', (_what, packet) => {
    const d = decide(packet, opts);
    expect(d.kind).toBe('forward');
    if (d.kind === 'forward') expect(d.query.header.id).toBe(0x1234);
  });

  it('SERVFAIL for a query nobody answered keeps the ID, the question and EDNS', () => {
    const q = decodeMessage(query('other-svc', { id: 7, edns: {} }));
    expect(summary(serverFailure(q))).toMatchObject({ id: 7, rcode: RCODE.SERVFAIL, question: 'other-svc', answers: [], opt: { udpSize: 1232 } });
    expect(summary(serverFailure(decodeMessage(query('x'))))).not.toHaveProperty('opt');
  });
});

describe('errors and drops', () => {
  it.each([
    ['a pointer loop', 'beef 0100 0001 0000 0000 0000 c00c 0001 0001'],
    ['a truncated question', 'beef 0100 0001 0000 0000 0000 09 656d6f6a'],
    ['no question', 'beef 0100 0000 0000 0000 0000'],
    ['two questions', `beef 0100 0002 0000 0000 0000 01 61 00 0001 0001 01 62 00 0001 0001`],
    ['a count promising an extra record', 'beef 0100 0001 0000 0000 0001 01 61 00 0001 0001'],
  ])('FORMERR for %s, with the ID kept', (_what, bytes) => {
    const r = answered(hex(bytes));
    expect(r).toMatchObject({ id: 0xbeef, rcode: RCODE.FORMERR, answers: [] });
  });

  it('FORMERR for two OPT records or an OPT not owned by the root (RFC 6891 6.1.1)', () => {
    const base = decodeMessage(query('emoji-svc'));
    const opt = optRecord({ udpSize: 1232, extendedRcode: 0, version: 0, dnssecOk: false });
    expect(answered(encodeMessage({ ...base, additionals: [opt, opt] })).rcode).toBe(RCODE.FORMERR);
    expect(answered(encodeMessage({ ...base, additionals: [{ ...opt, name: [new Uint8Array([0x61])] }] })).rcode).toBe(RCODE.FORMERR);
  });

  it('FORMERR, from the header alone, for a query with more records than a query carries', () => {
    const base = decodeMessage(query('emoji-svc'));
    const txt = (i: number): ResourceRecord => ({ name: [], type: TYPE.TXT, class: CLASS.IN, ttl: 0, data: new Uint8Array([1, i]) });
    // Eight well-formed records after the question still go on (forwarded, as the name is not a route's)...
    const eight = encodeMessage({
      ...base,
      questions: [{ ...base.questions[0]!, name: nameFromString('other.test') }],
      additionals: [0, 1, 2, 3, 4, 5, 6, 7].map(txt),
    });
    expect(decide(eight, opts).kind).toBe('forward');
    // ...nine are refused unread.
    const nine = encodeMessage({ ...base, additionals: [0, 1, 2, 3, 4, 5, 6, 7, 8].map(txt) });
    expect(answered(nine)).toMatchObject({ rcode: RCODE.FORMERR, answers: [] });
    expect(answered(nine).question).toBeUndefined();
    // An opcode other than QUERY stays NOTIMP, however many records it carries.
    const update = encodeMessage({ ...base, header: { ...base.header, opcode: 5 }, additionals: [0, 1, 2, 3, 4, 5, 6, 7, 8].map(txt) });
    expect(answered(update)).toMatchObject({ rcode: RCODE.NOTIMP, answers: [] });
    // A 64 KB datagram of records whose names walk a pointer chain: refused before a name is read.
    const bomb = pointerChain(8000, 4000);
    expect(bomb.length).toBeGreaterThan(60_000);
    expect(answered(bomb)).toMatchObject({ id: 0xbeef, rcode: RCODE.FORMERR });
  });

  it('BADVERS for EDNS version 1: extended RCODE 16, sent as 1 in the OPT', () => {
    const r = answered(query('emoji-svc', { edns: { version: 1 } }));
    expect(r).toMatchObject({ rcode: 0, answers: [], opt: { udpSize: 1232, ttl: 0x01000000 } });
  });

  it.each([
    ['STATUS', 2],
    ['NOTIFY', 4],
    ['UPDATE', 5],
  ])('NOTIMP for opcode %s', (_what, opcode) => {
    expect(answered(query('emoji-svc', { opcode })).rcode).toBe(RCODE.NOTIMP);
  });

  it('drops what is not a query: a response, or fewer bytes than a header', () => {
    const resp = query('emoji-svc');
    resp[2] = (resp[2] ?? 0) | 0x80;
    expect(decide(resp, opts)).toEqual({ kind: 'drop', reason: 'a response, not a query' });
    expect(decide(new Uint8Array(11), opts).kind).toBe('drop');
    expect(decide(new Uint8Array(0), opts).kind).toBe('drop');
  });
});
