// HPACK header compression (RFC 7541). The decoder is complete, as a peer may
// use every representation: the static and dynamic tables, dynamic table size
// updates, integer and string literals, Huffman-coded strings. Every size it
// accepts is bounded, because the peer is not trusted: the dynamic table by
// our SETTINGS_HEADER_TABLE_SIZE, integers by the block they sit in, and the
// decoded header list by a byte budget (a small table entry referenced by
// one-byte indexes would otherwise inflate a block many times over). The
// encoder only sends literals without indexing and without Huffman coding:
// the server sends a handful of short headers per stream, and a stateless
// encoder cannot get out of step with the peer's table.
import { huffmanDecode, HuffmanError } from './huffman.js';

export type HeaderList = [name: string, value: string][];

/** A malformed header block: a connection error of type COMPRESSION_ERROR. */
export class HpackError extends Error {}
/** A header list over the decoded size budget: the connection ends, as the table state is lost. */
export class HeaderListTooLarge extends Error {}

/** RFC 7541 Appendix A, index 1 first. */
const STATIC_TABLE: readonly [string, string][] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/** The size an entry counts for, in the table and in a header list: name and value octets plus 32. */
const entrySize = (name: string, value: string): number => name.length + value.length + 32;

export class HpackDecoder {
  /** Newest entry first, as dynamic indexes count from the newest. */
  private readonly table: [string, string][] = [];
  private tableSize = 0;
  /** The size the peer last chose with a size update; at most `limit`. */
  private maxSize: number;

  /**
   * @param limit our SETTINGS_HEADER_TABLE_SIZE: the largest table the peer may ask for
   * @param maxListSize the budget of one decoded header list (entry sizes as in SETTINGS_MAX_HEADER_LIST_SIZE)
   */
  constructor(
    private readonly limit: number,
    private readonly maxListSize: number,
  ) {
    this.maxSize = limit;
  }

  /** Number of entries in the dynamic table, for tests. */
  get dynamicEntries(): number {
    return this.table.length;
  }

  /** Decodes one complete header block. Names and values are latin1, so every octet survives. */
  decode(block: Buffer): HeaderList {
    const out: HeaderList = [];
    let listSize = 0;
    let pos = 0;
    let fieldSeen = false;

    const integer = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      if (pos >= block.length) throw new HpackError('header block ends inside an integer');
      let value = (block[pos++] ?? 0) & mask;
      if (value < mask) return value;
      // Continuation bytes, 7 bits each; more than four would exceed 2^28, far past anything a bounded block can use.
      for (let shift = 0; shift <= 21; shift += 7) {
        if (pos >= block.length) throw new HpackError('header block ends inside an integer');
        const b = block[pos++] ?? 0;
        value += (b & 0x7f) * 2 ** shift;
        if ((b & 0x80) === 0) return value;
      }
      throw new HpackError('integer in the header block is too large');
    };

    const string = (): string => {
      if (pos >= block.length) throw new HpackError('header block ends before a string literal');
      const huffman = ((block[pos] ?? 0) & 0x80) !== 0;
      const length = integer(7);
      if (length > block.length - pos) throw new HpackError('string literal runs past the end of the header block');
      const raw = block.subarray(pos, pos + length);
      pos += length;
      if (!huffman) return raw.toString('latin1');
      try {
        return huffmanDecode(raw).toString('latin1');
      } catch (err) {
        if (err instanceof HuffmanError) throw new HpackError(err.message);
        throw err;
      }
    };

    const lookup = (index: number): [string, string] => {
      if (index === 0) throw new HpackError('header field index 0');
      if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1] as [string, string];
      const entry = this.table[index - STATIC_TABLE.length - 1];
      if (!entry) throw new HpackError(`header field index ${index} is past the end of the table`);
      return entry;
    };

    const emit = (name: string, value: string): void => {
      listSize += entrySize(name, value);
      if (listSize > this.maxListSize) throw new HeaderListTooLarge(`header list is larger than ${this.maxListSize} bytes`);
      out.push([name, value]);
    };

    while (pos < block.length) {
      const b = block[pos] ?? 0;
      if (b & 0x80) {
        const [name, value] = lookup(integer(7));
        emit(name, value);
        fieldSeen = true;
      } else if (b & 0x40) {
        const index = integer(6);
        const name = index === 0 ? string() : lookup(index)[0];
        const value = string();
        this.add(name, value);
        emit(name, value);
        fieldSeen = true;
      } else if (b & 0x20) {
        // A size update is only allowed before the first field of a block.
        if (fieldSeen) throw new HpackError('dynamic table size update after a header field');
        const size = integer(5);
        if (size > this.limit) throw new HpackError(`dynamic table size update to ${size} is above our limit of ${this.limit}`);
        this.maxSize = size;
        this.evict();
      } else {
        // Literal without indexing (0000) or never indexed (0001): same layout, the table is untouched.
        const index = integer(4);
        const name = index === 0 ? string() : lookup(index)[0];
        emit(name, string());
        fieldSeen = true;
      }
    }
    return out;
  }

  private add(name: string, value: string): void {
    const size = entrySize(name, value);
    this.table.unshift([name, value]);
    this.tableSize += size;
    // An entry larger than the whole table empties it and is not kept.
    this.evict();
  }

  private evict(): void {
    while (this.tableSize > this.maxSize) {
      const last = this.table.pop();
      if (!last) break;
      this.tableSize -= entrySize(last[0], last[1]);
    }
  }
}

function encodeInteger(out: number[], value: number, prefixBits: number, firstByte: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(firstByte | value);
    return;
  }
  out.push(firstByte | max);
  let rest = value - max;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

/** Encodes a header list as literals without indexing; throws when the block would pass `maxBytes`. */
export function encodeHeaders(headers: HeaderList, maxBytes: number): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  for (const [name, value] of headers) {
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(value, 'latin1');
    const head: number[] = [];
    encodeInteger(head, 0, 4, 0x00);
    encodeInteger(head, n.length, 7, 0x00);
    const mid: number[] = [];
    encodeInteger(mid, v.length, 7, 0x00);
    total += head.length + n.length + mid.length + v.length;
    if (total > maxBytes) throw new Error(`response header block is larger than ${maxBytes} bytes`);
    parts.push(Buffer.from(head), n, Buffer.from(mid), v);
  }
  return Buffer.concat(parts, total);
}
