// DNS messages on the wire (RFC 1035 section 4, EDNS RFC 6891). Small on
// purpose: meshlet answers A/AAAA for a few names and relays every other
// query byte for byte, so it only needs the header, names (with compression
// pointers, RFC 1035 4.1.4), questions and records with opaque RDATA.
//
// Decoding is defensive: every read is bounds-checked, a compression pointer
// must point strictly before the data it continues (so there are no loops),
// and names are limited to 255 octets. The work is bounded too: a name follows
// at most MAX_POINTER_JUMPS pointers, and a message's names together take at
// most MAX_NAME_STEPS_PER_BYTE steps (labels read and pointers followed) per
// byte of the message, so no input costs more to decode than a plain message
// of its size. Any violation is a DnsFormatError, which the server turns into
// FORMERR.

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, HTTPS: 65, ANY: 255 } as const;
export const CLASS = { IN: 1, ANY: 255 } as const;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const OPCODE_QUERY = 0;
export const HEADER_LENGTH = 12;
/** RFC 1035 2.3.4. */
export const MAX_NAME_OCTETS = 255;
export const MAX_LABEL_OCTETS = 63;
/**
 * A name has at most 127 labels, and an encoder writes at most one pointer
 * per label it leaves out; more pointers than that is a chain built to make
 * the decoder walk (each jump costs nothing toward the 255 octets).
 */
export const MAX_POINTER_JUMPS = 127;
/**
 * Labels read plus pointers followed, over all the names of one message, per
 * byte of it. An uncompressed label is at least 2 bytes; a record whose name
 * is one pointer is at least 12 bytes; real messages stay under 1.
 */
export const MAX_NAME_STEPS_PER_BYTE = 2;

export class DnsFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DnsFormatError';
  }
}

export interface Header {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  /** The reserved bit; must be zero, kept for round trips. */
  z: boolean;
  ad: boolean;
  cd: boolean;
  /** The low four bits; EDNS carries the upper eight in the OPT record. */
  rcode: number;
}

/** A domain name as its labels, without the root label. Bytes, not text: labels may hold any octet. */
export type Name = Uint8Array[];

export interface Question {
  name: Name;
  type: number;
  class: number;
}

export interface ResourceRecord {
  name: Name;
  type: number;
  class: number;
  ttl: number;
  /** Opaque; names inside it stay as they were on the wire. */
  data: Uint8Array;
}

export interface Message {
  header: Header;
  questions: Question[];
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
}

// ---- decoding ----

class Reader {
  /** Name steps (labels and pointers) this message may still take: MAX_NAME_STEPS_PER_BYTE per byte. */
  private steps: number;

  constructor(
    readonly buf: Uint8Array,
    public pos = 0,
  ) {
    this.steps = MAX_NAME_STEPS_PER_BYTE * buf.length;
  }

  /** One label read or one pointer followed. */
  step(): void {
    if (--this.steps < 0) throw new DnsFormatError(`names take more than ${MAX_NAME_STEPS_PER_BYTE} steps per byte of the message to read`);
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.buf.length)
      throw new DnsFormatError(`message ends inside ${what} (offset ${this.pos}, need ${n} bytes, have ${this.buf.length - this.pos})`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++] ?? 0;
  }

  u16(what: string): number {
    this.need(2, what);
    const v = ((this.buf[this.pos] ?? 0) << 8) | (this.buf[this.pos + 1] ?? 0);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    const hi = this.u16(what);
    return hi * 0x10000 + this.u16(what);
  }

  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

export function decodeHeader(buf: Uint8Array): Header & { counts: [number, number, number, number] } {
  const r = new Reader(buf);
  const id = r.u16('the header');
  const flags = r.u16('the header');
  const counts: [number, number, number, number] = [r.u16('the header'), r.u16('the header'), r.u16('the header'), r.u16('the header')];
  return {
    id,
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    z: (flags & 0x0040) !== 0,
    ad: (flags & 0x0020) !== 0,
    cd: (flags & 0x0010) !== 0,
    rcode: flags & 0xf,
    counts,
  };
}

/** Reads a possibly compressed name at `r.pos`; leaves `r.pos` after it (after the first pointer, if any). */
function readName(r: Reader): Name {
  const labels: Name = [];
  let octets = 1; // the root label
  let pos = r.pos;
  let resume: number | undefined;
  // Every pointer must aim strictly before the segment it is found in, so
  // the walk moves backwards at each jump and ends within the message.
  let segmentStart = pos;
  let jumps = 0;
  for (;;) {
    if (pos >= r.buf.length) throw new DnsFormatError(`message ends inside a name (offset ${pos})`);
    const len = r.buf[pos] ?? 0;
    const kind = len & 0xc0;
    if (len !== 0) r.step();
    if (kind === 0xc0) {
      if (pos + 1 >= r.buf.length) throw new DnsFormatError(`message ends inside a compression pointer (offset ${pos})`);
      const target = ((len & 0x3f) << 8) | (r.buf[pos + 1] ?? 0);
      if (target >= segmentStart) throw new DnsFormatError(`compression pointer at offset ${pos} points forward or into itself (to ${target})`);
      if (target < HEADER_LENGTH) throw new DnsFormatError(`compression pointer at offset ${pos} points into the header (to ${target})`);
      if (++jumps > MAX_POINTER_JUMPS) throw new DnsFormatError(`name at offset ${r.pos} follows more than ${MAX_POINTER_JUMPS} compression pointers`);
      resume ??= pos + 2;
      pos = target;
      segmentStart = target;
      continue;
    }
    if (kind !== 0) throw new DnsFormatError(`unsupported label type 0x${kind.toString(16)} at offset ${pos}`);
    if (len === 0) {
      r.pos = resume ?? pos + 1;
      return labels;
    }
    if (pos + 1 + len > r.buf.length) throw new DnsFormatError(`message ends inside a label (offset ${pos})`);
    octets += len + 1;
    if (octets > MAX_NAME_OCTETS) throw new DnsFormatError(`name longer than ${MAX_NAME_OCTETS} octets`);
    labels.push(r.buf.slice(pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
}

function readQuestion(r: Reader): Question {
  const name = readName(r);
  return { name, type: r.u16('a question'), class: r.u16('a question') };
}

function readRecord(r: Reader): ResourceRecord {
  const name = readName(r);
  const type = r.u16('a record');
  const klass = r.u16('a record');
  const ttl = r.u32('a record');
  const length = r.u16('a record');
  return { name, type, class: klass, ttl, data: r.bytes(length, 'record data') };
}

/**
 * Decodes a whole message. Bytes after the last declared record are ignored,
 * as most servers do; a count that promises more than the message holds is a
 * format error.
 */
export function decodeMessage(buf: Uint8Array): Message {
  const { counts, ...header } = decodeHeader(buf);
  const r = new Reader(buf, HEADER_LENGTH);
  const [qd, an, ns, ar] = counts;
  const questions = readQuestions(r, qd);
  const section = (n: number): ResourceRecord[] => {
    const out: ResourceRecord[] = [];
    for (let i = 0; i < n; i++) out.push(readRecord(r));
    return out;
  };
  const answers = section(an);
  const authorities = section(ns);
  const additionals = section(ar);
  return { header, questions, answers, authorities, additionals };
}

/** The question section only: all a reply is checked against (its records are relayed, not read). */
export function decodeQuestions(buf: Uint8Array): Question[] {
  return readQuestions(new Reader(buf, HEADER_LENGTH), decodeHeader(buf).counts[0]);
}

function readQuestions(r: Reader, count: number): Question[] {
  const questions: Question[] = [];
  for (let i = 0; i < count; i++) questions.push(readQuestion(r));
  return questions;
}

// ---- encoding ----

class Writer {
  private buf = new Uint8Array(512);
  length = 0;
  /** Lowercased name suffix → offset, for compression (RFC 1035 4.1.4). */
  private readonly names = new Map<string, number>();

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v & 0xff;
  }

  u16(v: number): void {
    this.u8(v >> 8);
    this.u8(v);
  }

  u32(v: number): void {
    this.u16(Math.floor(v / 0x10000) & 0xffff);
    this.u16(v & 0xffff);
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  name(name: Name): void {
    if (name.some((l) => l.length === 0 || l.length > MAX_LABEL_OCTETS)) throw new RangeError('label must be 1-63 octets');
    if (name.reduce((n, l) => n + l.length + 1, 1) > MAX_NAME_OCTETS) throw new RangeError(`name longer than ${MAX_NAME_OCTETS} octets`);
    for (let i = 0; i < name.length; i++) {
      const key = nameKey(name.slice(i));
      const at = this.names.get(key);
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.length < 0x4000) this.names.set(key, this.length);
      const label = name[i] ?? new Uint8Array();
      this.u8(label.length);
      this.bytes(label);
    }
    this.u8(0);
  }

  done(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** A case-insensitive key for a name: only ASCII letters fold (RFC 4343); each label is length-prefixed so no two names share a key. */
function nameKey(name: Name): string {
  let key = '';
  for (const label of name) {
    key += String.fromCharCode(label.length);
    for (const b of label) key += String.fromCharCode(b >= 0x41 && b <= 0x5a ? b + 0x20 : b);
  }
  return key;
}

export function encodeHeaderFlags(h: Header): number {
  return (
    (h.qr ? 0x8000 : 0) |
    ((h.opcode & 0xf) << 11) |
    (h.aa ? 0x0400 : 0) |
    (h.tc ? 0x0200 : 0) |
    (h.rd ? 0x0100 : 0) |
    (h.ra ? 0x0080 : 0) |
    (h.z ? 0x0040 : 0) |
    (h.ad ? 0x0020 : 0) |
    (h.cd ? 0x0010 : 0) |
    (h.rcode & 0xf)
  );
}

export function encodeMessage(m: Message): Uint8Array {
  const w = new Writer();
  w.u16(m.header.id);
  w.u16(encodeHeaderFlags(m.header));
  for (const n of [m.questions.length, m.answers.length, m.authorities.length, m.additionals.length]) w.u16(n);
  for (const q of m.questions) {
    w.name(q.name);
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const rr of [...m.answers, ...m.authorities, ...m.additionals]) {
    w.name(rr.name);
    w.u16(rr.type);
    w.u16(rr.class);
    w.u32(rr.ttl);
    w.u16(rr.data.length);
    w.bytes(rr.data);
  }
  return w.done();
}

// ---- names as text ----

/** Presentation format (RFC 1035 5.1) without the trailing dot: "." and "\" escaped, other unprintables as \DDD. */
export function nameToString(name: Name): string {
  return name
    .map((label) => {
      let s = '';
      for (const b of label) {
        if (b === 0x2e || b === 0x5c) s += `\\${String.fromCharCode(b)}`;
        else if (b > 0x20 && b < 0x7f) s += String.fromCharCode(b);
        else s += `\\${b.toString().padStart(3, '0')}`;
      }
      return s;
    })
    .join('.');
}

/** Labels of a plain host name ("emoji-svc.ns.svc"); a trailing dot is ignored. */
export function nameFromString(text: string): Name {
  const bare = text.endsWith('.') ? text.slice(0, -1) : text;
  if (bare === '') return [];
  return bare.split('.').map((l) => {
    if (l.length === 0 || l.length > MAX_LABEL_OCTETS) throw new RangeError(`bad label in "${text}"`);
    return new Uint8Array(Buffer.from(l, 'latin1'));
  });
}

export function sameName(a: Name, b: Name): boolean {
  return a.length === b.length && nameKey(a) === nameKey(b);
}

// ---- EDNS (RFC 6891) ----

export interface Edns {
  udpSize: number;
  extendedRcode: number;
  version: number;
  dnssecOk: boolean;
}

export function ednsOf(rr: ResourceRecord): Edns {
  return {
    udpSize: rr.class,
    extendedRcode: Math.floor(rr.ttl / 0x1000000) & 0xff,
    version: Math.floor(rr.ttl / 0x10000) & 0xff,
    dnssecOk: (rr.ttl & 0x8000) !== 0,
  };
}

export function optRecord(e: Edns): ResourceRecord {
  return {
    name: [],
    type: TYPE.OPT,
    class: e.udpSize,
    ttl: (e.extendedRcode & 0xff) * 0x1000000 + (e.version & 0xff) * 0x10000 + (e.dnssecOk ? 0x8000 : 0),
    data: new Uint8Array(),
  };
}
