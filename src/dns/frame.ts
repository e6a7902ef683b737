// DNS over TCP frames every message with a two-byte length (RFC 1035 4.2.2,
// RFC 7766). This turns a byte stream into whole messages.

export class FrameReader {
  private pending = Buffer.alloc(0);

  /** Appends a chunk; returns every message now complete. */
  push(chunk: Uint8Array): Uint8Array[] {
    this.pending = this.pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.pending, chunk]);
    const out: Uint8Array[] = [];
    while (this.pending.length >= 2) {
      const len = this.pending.readUInt16BE(0);
      if (this.pending.length < 2 + len) break;
      out.push(new Uint8Array(this.pending.subarray(2, 2 + len)));
      this.pending = this.pending.subarray(2 + len);
    }
    return out;
  }

  /** Bytes received that do not form a whole message yet. */
  get buffered(): number {
    return this.pending.length;
  }
}

export function frame(message: Uint8Array): Buffer {
  if (message.length > 0xffff) throw new RangeError('a DNS message over TCP is at most 65535 bytes');
  const out = Buffer.alloc(2 + message.length);
  out.writeUInt16BE(message.length, 0);
  out.set(message, 2);
  return out;
}
