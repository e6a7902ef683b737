// The string-literal Huffman code of HPACK (RFC 7541, Appendix B), decode
// side only: our encoder sends plain literals, but a peer may Huffman-code any
// name or value. The code is canonical (codes of one length are consecutive,
// in symbol order, and shorter codes sort first), so the bit lengths of the
// 257 symbols (256 byte values, then EOS) define it completely; the decoding
// tree is built from them on first use.

/** Bit length of each symbol's code, one base-36 digit per symbol, symbol 0 first; the last is EOS. */
const LENGTHS =
  'dnsssssssoussussssssssusssssssss6aacd68baa8b8666555666666678f6ca' +
  'd67777777777777777777777878djde6f56565666577666567655677777fbeds' +
  'kmkkmmmnmnnnnnonoomnonnnnlmnmnnomlkmmnnlnmmolmnnllmlnmnnkmmmnmmn' +
  'qqkjmnmpqqqrrqopjlqrrqrollqqsrrrkoklmllnmmppooqnqrqqrrrrrsrrrrrq' +
  'u';

const EOS = 256;

/** The code of every symbol, as [code, length] with the code in the low bits; for tests and the tree. */
export function huffmanCodes(): [number, number][] {
  const lengths = [...LENGTHS].map((c) => parseInt(c, 36));
  const order = lengths.map((_, sym) => sym).sort((a, b) => (lengths[a] ?? 0) - (lengths[b] ?? 0) || a - b);
  const codes: [number, number][] = new Array<[number, number]>(lengths.length);
  let code = 0;
  let prev = 0;
  for (const [k, sym] of order.entries()) {
    const len = lengths[sym] ?? 0;
    // Canonical assignment: the next code of the same length, shifted left when the length grows.
    if (k > 0) code = (code + 1) * 2 ** (len - prev);
    prev = len;
    codes[sym] = [code, len];
  }
  return codes;
}

// The tree: node n's children are at 2n (bit 0) and 2n+1 (bit 1); a value v > 0
// is the next node, v <= 0 is the leaf of symbol -v; unset entries are -1000
// (cannot happen for a complete code, kept as a guard). Node 0 is the root.
let tree: Int32Array | undefined;
const NONE = -1000;

function buildTree(): Int32Array {
  const t = new Int32Array(2 * 256).fill(NONE);
  let nodes = 1;
  for (const [sym, [code, len]] of huffmanCodes().entries()) {
    let node = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) & 1;
      const slot = 2 * node + bit;
      if (i === 0) t[slot] = -sym;
      else {
        if (t[slot] === NONE) t[slot] = nodes++;
        node = t[slot] ?? 0;
      }
    }
  }
  return t;
}

export class HuffmanError extends Error {}

/** Decodes a Huffman-coded string literal; throws HuffmanError on EOS inside the string or bad padding. */
export function huffmanDecode(input: Uint8Array): Buffer {
  tree ??= buildTree();
  const t = tree;
  // Every symbol is at least 5 bits, so the output is at most 8/5 of the input.
  const out = Buffer.allocUnsafe(Math.ceil((input.length * 8) / 5));
  let n = 0;
  let node = 0;
  // Bits read since the last complete symbol, and whether they were all ones: the only valid padding.
  let pendingBits = 0;
  let allOnes = true;
  for (const byte of input) {
    for (let i = 7; i >= 0; i--) {
      const bit = (byte >> i) & 1;
      const next = t[2 * node + bit] ?? NONE;
      pendingBits++;
      if (bit === 0) allOnes = false;
      if (next > 0) node = next;
      else {
        if (next === NONE || -next === EOS) throw new HuffmanError('Huffman string contains EOS or an invalid code');
        out[n++] = -next;
        node = 0;
        pendingBits = 0;
        allOnes = true;
      }
    }
  }
  if (pendingBits > 7 || !allOnes) throw new HuffmanError('Huffman string has invalid padding');
  return out.subarray(0, n);
}
