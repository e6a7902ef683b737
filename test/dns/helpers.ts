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
