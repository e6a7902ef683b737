// DNS over TCP frames every message with a two-byte length (RFC 1035 4.2.2,
// RFC 7766). This turns a byte stream into whole messages.

export class FrameReader {
  /** Received and not yet part of a whole message, in arrival order. */
  private chunks: Buffer[] = [];
  private size = 0;

  /**
   * Appends a chunk; returns every message now complete. Chunks are joined
   * only once a message is whole, so a message trickled in a byte at a time
   * costs its length, not its length squared.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length > 0) {
      this.chunks.push(Buffer.from(chunk));
      this.size += chunk.length;
    }
    const out: Uint8Array[] = [];
    while (this.size >= 2) {
      const head = this.chunks[0] as Buffer;
      const len = head.length >= 2 ? head.readUInt16BE(0) : ((head[0] ?? 0) << 8) | (this.chunks[1]?.[0] ?? 0);
      if (this.size < 2 + len) break;
      const all = this.chunks.length === 1 ? head : Buffer.concat(this.chunks, this.size);
      out.push(new Uint8Array(all.subarray(2, 2 + len)));
      const rest = all.subarray(2 + len);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.size = rest.length;
    }
    return out;
  }

  /** Bytes received that do not form a whole message yet. */
  get buffered(): number {
    return this.size;
  }
}

export function frame(message: Uint8Array): Buffer {
  if (message.length > 0xffff) throw new RangeError('a DNS message over TCP is at most 65535 bytes');
  const out = Buffer.alloc(2 + message.length);
  out.writeUInt16BE(message.length, 0);
  out.set(message, 2);
  return out;
}
