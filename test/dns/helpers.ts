// Building and reading DNS messages in tests, with the codec under test
// cross-checked by hand-written bytes in wire.test.ts.
import { CLASS, TYPE, decodeMessage, encodeMessage, nameFromString, nameToString, optRecord, type Message, type ResourceRecord } from '../../src/dns/wire.js';
import { freeLowPort } from '../helpers/ports.js';

export interface QueryOptions {
  id?: number;
  type?: number;
  class?: number;
  rd?: boolean;
  edns?: { udpSize?: number; version?: number; dnssecOk?: boolean };
  opcode?: number;
}

export function query(name: string, opts: QueryOptions = {}): Uint8Array {
  const additionals: ResourceRecord[] = opts.edns
    ? [optRecord({ udpSize: opts.edns.udpSize ?? 1232, extendedRcode: 0, version: opts.edns.version ?? 0, dnssecOk: opts.edns.dnssecOk ?? false })]
    : [];
  return encodeMessage({
    header: {
      id: opts.id ?? 0x1234,
      qr: false,
      opcode: opts.opcode ?? 0,
      aa: false,
      tc: false,
      rd: opts.rd ?? true,
      ra: false,
      z: false,
      ad: false,
      cd: false,
      rcode: 0,
    },
    questions: [{ name: nameFromString(name), type: opts.type ?? TYPE.A, class: opts.class ?? CLASS.IN }],
    answers: [],
    authorities: [],
    additionals,
  });
}

export interface Summary {
  id: number;
  rcode: number;
  aa: boolean;
  tc: boolean;
  question?: string;
  answers: { name: string; type: number; ttl: number; data: string }[];
  opt?: { udpSize: number; ttl: number };
}

/** The parts of a reply tests assert on; A records as dotted quads. */
export function summary(bytes: Uint8Array): Summary {
  const m: Message = decodeMessage(bytes);
  const q = m.questions[0];
  const opt = m.additionals.find((r) => r.type === TYPE.OPT);
  return {
    id: m.header.id,
    rcode: m.header.rcode,
    aa: m.header.aa,
    tc: m.header.tc,
    ...(q ? { question: nameToString(q.name) } : {}),
    answers: m.answers.map((a) => ({
      name: nameToString(a.name),
      type: a.type,
      ttl: a.ttl,
      data: a.type === TYPE.A ? [...a.data].join('.') : Buffer.from(a.data).toString('hex'),
    })),
    ...(opt ? { opt: { udpSize: opt.class, ttl: opt.ttl } } : {}),
  };
}

/** A loopback port free for both UDP and TCP right now (DNS binds both), outside the ephemeral range (helpers/ports.ts). */
export function freeDnsPort(): Promise<number> {
  return freeLowPort({ udp: true });
}

/**
 * A message made to make a name decoder walk. After the question "." A IN
 * comes one TXT record whose data is a chain of `chain` compression pointers,
 * each aiming at the one before it (the first at the question's root name),
 * then `records` records whose name is one pointer to the chain's last
 * pointer. Every pointer aims backwards, so a decoder that only refuses loops
 * follows the whole chain for each of those records.
 */
export function pointerChain(chain: number, records: number, header: { id?: number; qr?: boolean } = {}): Uint8Array {
  const rdata = 28;
  const last = rdata + 2 * (chain - 1);
  if (last >= 0x4000) throw new RangeError('a compression pointer reaches 16383 at most');
  const b = Buffer.alloc(rdata + 2 * chain + 12 * records);
  b.writeUInt16BE(header.id ?? 0xbeef, 0);
  b.writeUInt16BE((header.qr ? 0x8000 : 0) | 0x0100, 2);
  b.writeUInt16BE(1, 4);
  b.writeUInt16BE(1 + records, 6);
  // Offset 12: the question "." A IN; offset 17: the record "." TXT IN, TTL 0, with the chain as its data.
  b.writeUInt16BE(TYPE.A, 13);
  b.writeUInt16BE(CLASS.IN, 15);
  b.writeUInt16BE(TYPE.TXT, 18);
  b.writeUInt16BE(CLASS.IN, 20);
  b.writeUInt16BE(2 * chain, 26);
  for (let i = 0; i < chain; i++) b.writeUInt16BE(0xc000 | (i === 0 ? 12 : rdata + 2 * (i - 1)), rdata + 2 * i);
  for (let i = 0, at = rdata + 2 * chain; i < records; i++, at += 12) {
    b.writeUInt16BE(0xc000 | last, at);
    b.writeUInt16BE(TYPE.TXT, at + 2);
    b.writeUInt16BE(CLASS.IN, at + 4);
  }
  return new Uint8Array(b);
}
