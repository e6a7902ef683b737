// What to do with one DNS message from the app: answer it ourselves, forward
// it to the pod's resolvers, or drop it. Pure, so it is tested with tables
// and fuzzed with random packets (test/dns/fuzz.test.ts).
import {
  CLASS,
  DnsFormatError,
  HEADER_LENGTH,
  OPCODE_QUERY,
  RCODE,
  TYPE,
  decodeHeader,
  decodeMessage,
  ednsOf,
  encodeMessage,
  nameToString,
  optRecord,
  type Header,
  type Message,
  type Question,
  type ResourceRecord,
} from './wire.js';
import type { NameTable } from './table.js';
const { isIPv4 } = process.getBuiltinModule('node:net');

/** The EDNS payload size we advertise (DNS flag day 2020). */
export const EDNS_UDP_SIZE = 1232;
/** RFC 6891 6.1.3: extended RCODE 16, sent as 1 in the OPT record's upper bits. */
const BADVERS_HIGH = 1;
/**
 * Records a query may carry after its question (an OPT and a TSIG are the
 * usual ones). More is FORMERR, decided from the header before any name is
 * read, so a query's decode stays a few names long whatever the app sends.
 */
export const MAX_QUERY_RECORDS = 8;

export type Decision =
  | { kind: 'answer'; response: Uint8Array; rcode: number; qname?: string; route?: string }
  | { kind: 'forward'; query: Message; qname: string }
  | { kind: 'drop'; reason: string };

export interface AnswerOptions {
  table: NameTable;
  /** TTL of our answers, seconds. */
  ttl: number;
}

export function decide(packet: Uint8Array, opts: AnswerOptions): Decision {
  if (packet.length < HEADER_LENGTH) return { kind: 'drop', reason: 'shorter than a DNS header' };
  const head = decodeHeader(packet);
  // Never answer a response: two servers would echo each other forever.
  if (head.qr) return { kind: 'drop', reason: 'a response, not a query' };
  const [qd, an, ns, ar] = head.counts;
  // RFC 9619: a query has exactly one question; more, or more records than a query needs, is refused unread (NOTIMP
  // still for an opcode other than QUERY, which is never served).
  if (qd > 1 || an + ns + ar > MAX_QUERY_RECORDS) {
    const rcode = head.opcode === OPCODE_QUERY ? RCODE.FORMERR : RCODE.NOTIMP;
    return { kind: 'answer', rcode, response: reply(head, [], rcode) };
  }
  let msg: Message;
  try {
    msg = decodeMessage(packet);
  } catch (err) {
    if (!(err instanceof DnsFormatError)) throw err;
    return { kind: 'answer', rcode: RCODE.FORMERR, response: reply(head, [], RCODE.FORMERR) };
  }
  const q = msg.questions[0];
  if (msg.header.opcode !== OPCODE_QUERY)
    return { kind: 'answer', rcode: RCODE.NOTIMP, response: reply(msg.header, msg.questions.length === 1 ? msg.questions : [], RCODE.NOTIMP) };
  // RFC 9619: a query has exactly one question.
  if (q === undefined || msg.questions.length !== 1) return { kind: 'answer', rcode: RCODE.FORMERR, response: reply(msg.header, [], RCODE.FORMERR) };
  const opts6891 = msg.additionals.filter((rr) => rr.type === TYPE.OPT);
  // RFC 6891 6.1.1: at most one OPT, owned by the root.
  if (opts6891.length > 1 || opts6891.some((rr) => rr.name.length > 0))
    return { kind: 'answer', rcode: RCODE.FORMERR, response: reply(msg.header, [q], RCODE.FORMERR) };
  const edns = opts6891[0] === undefined ? undefined : ednsOf(opts6891[0]);
  if (edns && edns.version > 0) {
    return {
      kind: 'answer',
      rcode: 16,
      response: reply(msg.header, [q], RCODE.NOERROR, [], optRecord({ udpSize: EDNS_UDP_SIZE, extendedRcode: BADVERS_HIGH, version: 0, dnssecOk: false })),
    };
  }
  const qname = nameToString(q.name);
  const hit = q.class === CLASS.IN || q.class === CLASS.ANY ? opts.table.lookup(qname) : undefined;
  if (!hit) return { kind: 'forward', query: msg, qname };
  const opt = edns ? optRecord({ udpSize: EDNS_UDP_SIZE, extendedRcode: 0, version: 0, dnssecOk: false }) : undefined;
  return {
    kind: 'answer',
    rcode: RCODE.NOERROR,
    qname,
    route: hit.route,
    response: reply(msg.header, [q], RCODE.NOERROR, addressAnswers(q, hit.ip, opts.ttl), opt, true),
  };
}

/**
 * A and ANY get the route's address. AAAA gets NOERROR with no records
 * (NODATA): the listen address is IPv4, and NXDOMAIN would tell the client
 * the name does not exist at all, failing a parallel A lookup (Istio #31250).
 * Every other type is NODATA too, instead of being forwarded: an upstream
 * answer (an HTTPS record's address hints, say) would route around the mesh.
 */
function addressAnswers(q: Question, ip: string, ttl: number): ResourceRecord[] {
  if (q.type !== TYPE.A && q.type !== TYPE.ANY) return [];
  if (!isIPv4(ip)) return [];
  return [{ name: q.name, type: TYPE.A, class: CLASS.IN, ttl, data: new Uint8Array(ip.split('.').map(Number)) }];
}

/** A response to `query` with the given questions, rcode and records. */
export function reply(
  query: Header,
  questions: Question[],
  rcode: number,
  answers: ResourceRecord[] = [],
  opt?: ResourceRecord,
  authoritative = false,
): Uint8Array {
  return encodeMessage({
    header: { id: query.id, qr: true, opcode: query.opcode, aa: authoritative, tc: false, rd: query.rd, ra: true, z: false, ad: false, cd: query.cd, rcode },
    questions,
    answers,
    authorities: [],
    additionals: opt ? [opt] : [],
  });
}

/** SERVFAIL for a query we could not forward. */
export function serverFailure(query: Message): Uint8Array {
  const hadEdns = query.additionals.some((rr) => rr.type === TYPE.OPT);
  const opt = hadEdns ? optRecord({ udpSize: EDNS_UDP_SIZE, extendedRcode: 0, version: 0, dnssecOk: false }) : undefined;
  return reply(query.header, query.questions.slice(0, 1), RCODE.SERVFAIL, [], opt);
}
