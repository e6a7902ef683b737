// A gRPC server for exactly what ADS needs: bidirectional streaming methods
// over cleartext HTTP/2 on a Unix socket, uncompressed messages. A general
// gRPC library costs about 7 MiB of resident memory in every pod and the
// largest part of start-up module loading; this is the subset of the protocol
// (length-prefixed messages, status in trailers) that Envoy's ADS client
// speaks. Anything else is refused with a gRPC status. HTTP/2 itself is our
// own small server on node:net (./h2/), not node:http2, which would load the
// TLS stack and cost several MiB and milliseconds at every start for a socket
// that never carries TLS.
import { H2Connection, type H2Stream } from './h2/connection.js';
import type { Server } from 'node:net';
const { EventEmitter } = process.getBuiltinModule('node:events');
const net = process.getBuiltinModule('node:net');

/** The gRPC status codes this server sends. */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** Largest request message accepted, as gRPC's usual default: a bigger one ends the stream. */
export const MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

/**
 * Connections served at once; more are closed as they arrive. One Envoy keeps one; a restarted Envoy may briefly
 * overlap the one it replaces. Each connection's memory is bounded by the HTTP/2 limits, so this bounds the total.
 */
export const MAX_CONNECTIONS = 4;

export interface BidiMethod<Req, Res> {
  /** "/package.Service/Method" */
  path: string;
  deserialize: (bytes: Buffer) => Req;
  serialize: (value: Res) => Buffer;
  handler: (call: ServerCall<Req, Res>) => void;
}

/**
 * One call. Events: 'data' (a request message, and its size on the wire), 'end' (the client closed its
 * side), 'cancelled' (the client reset the stream or went away before we
 * finished), 'error' (a protocol or decoding error; the call is already
 * failed with a status), 'close' (the HTTP/2 stream is gone).
 */
export class ServerCall<Req, Res> extends EventEmitter {
  cancelled = false;
  writableEnded = false;
  /** The message being received: its 5-byte prefix, then its body as copies in a buffer that grows as it fills. */
  private readonly prefix = Buffer.alloc(5);
  private prefixBytes = 0;
  private body: Buffer | undefined;
  private bodyBytes = 0;
  private bodyLength = 0;

  constructor(
    private readonly stream: H2Stream,
    private readonly method: BidiMethod<Req, Res>,
  ) {
    super();
    // The trailers go out after the last queued message; the status is final, so a client still sending then
    // gets its half of the stream reset (RST_STREAM NO_ERROR).
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': 'identity' });
    // Bytes count as read (and the peer gets window back) only once a whole message is decoded, so a stream's
    // window bounds what it can make us buffer.
    stream.autoRead = false;
    stream.on('data', (chunk: Buffer) => this.receive(chunk));
    stream.on('end', () => {
      if (this.prefixBytes > 0) this.fail(Status.INTERNAL, 'stream ended inside a message');
      else this.emit('end');
    });
    stream.on('aborted', () => this.cancel());
    stream.on('close', () => {
      if (!this.writableEnded) this.cancel();
      this.emit('close');
    });
  }

  /** Sends one response message; false when the call is already over. */
  write(value: Res): boolean {
    if (this.writableEnded || this.cancelled || this.stream.closed) return false;
    const body = this.method.serialize(value);
    const frame = Buffer.allocUnsafe(5 + body.length);
    frame[0] = 0;
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    return this.stream.write(frame);
  }

  /** Ends the call with status OK. */
  end(): void {
    this.finish(Status.OK, '');
  }

  /** Ends the call with an error status. */
  fail(code: number, details: string): void {
    this.finish(code, details);
  }

  private finish(code: number, details: string): void {
    if (this.writableEnded) return;
    this.writableEnded = true;
    this.stream.end({ 'grpc-status': String(code), ...(details ? { 'grpc-message': grpcMessage(details) } : {}) });
  }

  private cancel(): void {
    if (this.cancelled || this.writableEnded) return;
    this.cancelled = true;
    this.emit('cancelled');
  }

  /**
   * Splits the byte stream into length-prefixed messages: 1 byte compressed flag, 4 bytes length, the message.
   * `chunk` is a view of a socket chunk: what is kept of a partial message is copied, so the memory held for a
   * stream is about the bytes it has unread (at most twice, as the body buffer doubles), never the chunks they came
   * in, whatever the frame sizes.
   */
  private receive(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && !this.writableEnded) {
      if (this.prefixBytes < 5) {
        const n = Math.min(5 - this.prefixBytes, chunk.length - offset);
        chunk.copy(this.prefix, this.prefixBytes, offset, offset + n);
        this.prefixBytes += n;
        offset += n;
        if (this.prefixBytes < 5) return;
        const length = this.prefix.readUInt32BE(1);
        if (this.prefix[0] !== 0) return this.protocolError(Status.UNIMPLEMENTED, 'compressed messages are not supported');
        if (length > MAX_RECEIVE_BYTES)
          return this.protocolError(Status.RESOURCE_EXHAUSTED, `request message of ${length} bytes is larger than ${MAX_RECEIVE_BYTES}`);
        this.bodyLength = length;
        this.bodyBytes = 0;
        this.body = undefined;
      }
      const n = Math.min(this.bodyLength - this.bodyBytes, chunk.length - offset);
      let message: Buffer;
      if (this.bodyBytes === 0 && n === this.bodyLength) {
        // A whole message in this chunk: one copy, for the deserializer (which may keep views of it).
        message = Buffer.from(chunk.subarray(offset, offset + n));
      } else {
        const body = this.grow(this.bodyBytes + n);
        chunk.copy(body, this.bodyBytes, offset, offset + n);
        this.bodyBytes += n;
        if (this.bodyBytes < this.bodyLength) return;
        message = body.subarray(0, this.bodyLength);
      }
      offset += n;
      this.prefixBytes = 0;
      this.body = undefined;
      this.bodyBytes = 0;
      this.stream.read(5 + this.bodyLength);
      let decoded: Req;
      try {
        decoded = this.method.deserialize(message);
      } catch (err) {
        // A deserializer may name the status (RESOURCE_EXHAUSTED for a request over its limits); anything else is INTERNAL.
        const code = (err as { code?: unknown }).code;
        return this.protocolError(typeof code === 'number' ? code : Status.INTERNAL, `cannot decode the request message: ${(err as Error).message}`);
      }
      this.emit('data', decoded, 5 + this.bodyLength);
    }
  }

  /** Makes room for `needed` body bytes, doubling (up to the message's length) so each byte is copied O(1) times. */
  private grow(needed: number): Buffer {
    if (this.body && needed <= this.body.length) return this.body;
    const current = this.body?.length ?? 0;
    const next = Buffer.allocUnsafe(Math.min(this.bodyLength, Math.max(needed, 2 * current, 1024)));
    if (this.body) this.body.copy(next, 0, 0, this.bodyBytes);
    this.body = next;
    return next;
  }

  private protocolError(code: number, details: string): void {
    this.prefixBytes = 0;
    this.body = undefined;
    this.bodyBytes = 0;
    this.fail(code, details);
    this.emit('error', Object.assign(new Error(details), { code }));
  }
}

export class GrpcServer {
  private readonly server: Server;
  private readonly methods = new Map<string, BidiMethod<unknown, unknown>>();
  private readonly connections = new Set<H2Connection>();

  constructor(onSessionError: (err: Error) => void = () => undefined) {
    this.server = net.createServer((socket) => {
      // A stream's window is one largest message with its prefix: a message never waits on window it cannot get.
      const conn = new H2Connection(socket, { onStream: (stream) => this.route(stream), onError: onSessionError }, MAX_RECEIVE_BYTES + 5);
      this.connections.add(conn);
      conn.on('close', () => this.connections.delete(conn));
    });
    this.server.maxConnections = MAX_CONNECTIONS;
  }

  addMethod<Req, Res>(method: BidiMethod<Req, Res>): void {
    this.methods.set(method.path, method as BidiMethod<unknown, unknown>);
  }

  listen(socketPath: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(socketPath, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
  }

  /** Stops accepting connections and asks every client to go away (GOAWAY) once its streams are done. */
  tryShutdown(done: () => void): void {
    this.server.close(() => done());
    for (const c of this.connections) c.shutdown();
  }

  forceShutdown(): void {
    for (const c of this.connections) c.destroy();
    this.server.close();
  }

  private route(stream: H2Stream): void {
    const headers = stream.headers;
    const contentType = headers['content-type'] ?? '';
    if (headers[':method'] !== 'POST') return void stream.respond({ ':status': 405 }, true);
    if (!/^application\/grpc(\+proto)?(;|$)/.test(contentType)) return void stream.respond({ ':status': 415 }, true);
    const encoding = headers['grpc-encoding'];
    const method = this.methods.get(headers[':path'] ?? '');
    if (!method) return void trailersOnly(stream, Status.UNIMPLEMENTED, `unknown method ${headers[':path'] ?? ''}`);
    if (encoding !== undefined && encoding !== 'identity') return void trailersOnly(stream, Status.UNIMPLEMENTED, `grpc-encoding ${encoding} is not supported`);
    method.handler(new ServerCall(stream, method));
  }
}

function trailersOnly(stream: H2Stream, code: number, details: string): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': grpcMessage(details) }, true);
}

/** Longest status message sent, in characters: details may repeat what the peer sent (a path up to 64 KiB long). */
export const MAX_STATUS_MESSAGE_CHARS = 200;

/** A status message for grpc-message: cut to a bound that keeps the trailers far under our header block limit, percent-encoded. */
function grpcMessage(details: string): string {
  const chars = [...details];
  const cut = chars.length > MAX_STATUS_MESSAGE_CHARS ? `${chars.slice(0, MAX_STATUS_MESSAGE_CHARS).join('')}...` : details;
  // A lone surrogate would make encodeURIComponent throw.
  return encodeURIComponent(cut.replace(/\p{Surrogate}/gu, '\uFFFD'));
}
