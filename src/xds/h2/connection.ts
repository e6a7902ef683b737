// The server side of one cleartext HTTP/2 connection with prior knowledge
// (RFC 9113) on a net.Socket: the frame parser, stream states, flow control in
// both directions, and the limits that keep a hostile peer from growing our
// memory or CPU without bound. The peer is whoever can open the socket; it is
// treated as hostile: every frame it sends is checked, a protocol error ends the
// connection with GOAWAY and its code, a stream error resets that stream, and
// nothing it sends can throw out of the socket's event handlers.
import type { Socket } from 'node:net';
import {
  ConnectionError,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  frame,
  FRAME_HEADER_BYTES,
  frameHeader,
  FrameType,
  goawayPayload,
  LARGEST_MAX_FRAME_SIZE,
  MAX_WINDOW,
  PREFACE,
  Setting,
  settingsPayload,
  u32,
} from './frames.js';
import { encodeHeaders, HeaderListTooLarge, HpackDecoder, HpackError, type HeaderList } from './hpack.js';
const { EventEmitter } = process.getBuiltinModule('node:events');

/**
 * What this server allows a peer; sized for Envoy's one ADS stream per connection with room to spare. What one
 * connection can make us hold, whatever the peer does: unread request bytes up to the connection window (16 MiB,
 * kept as copies, at most twice that while a message's buffer grows), queued response bytes up to
 * maxQueuedPerConnection (32 MiB), our unsent output up to maxSocketBacklog (4 MiB) plus one frame, one partial
 * frame (16 KiB), one header block (64 KiB) and the HPACK table (4 KiB). The gRPC layer serves at most 4 connections.
 */
export const LIMITS = {
  /** Advertised and enforced: more open streams are refused with RST_STREAM(REFUSED_STREAM). */
  maxConcurrentStreams: 16,
  /**
   * Our receive windows. Data counts as read only when the stream's reader says so (the gRPC layer: once a whole
   * message is decoded), so what a peer can make us hold unread is bounded by these: per stream by its window, per
   * connection by the connection window. The stream window is a default; the gRPC layer sets its own (one largest
   * message, 4 MiB). By design 16 streams of 4 MiB exceed the 16 MiB connection window: a peer with half-sent
   * messages on more than four streams at once runs out of connection window and blocks only itself (Envoy uses
   * one stream), and the connection window, not the stream count, bounds what we hold.
   */
  streamWindow: 1024 * 1024,
  connectionWindow: 16 * 1024 * 1024,
  /**
   * A WINDOW_UPDATE is sent once the bytes read but not yet given back reach this share of the window, or at once
   * (at the end of the batch of frames being handled) while the stream holds part of a message, whose rest the peer
   * may be waiting to send.
   */
  windowUpdateShare: 0.5,
  /** Our SETTINGS_HEADER_TABLE_SIZE (the protocol default): the most the peer's encoder may make us keep. */
  headerTableSize: 4096,
  /** A request's header block: encoded (HEADERS + CONTINUATION payloads) and decoded (RFC 7541 entry sizes). */
  maxHeaderBlockBytes: 64 * 1024,
  maxHeaderListBytes: 64 * 1024,
  /** CONTINUATION frames in one header block; a legitimate peer needs a few at most. */
  maxContinuations: 32,
  /** Our response header blocks (a handful of short headers; the bound catches a bug, not a peer). */
  maxResponseHeaderBytes: 16 * 1024,
  /** The largest DATA frame we send, below the peer's SETTINGS_MAX_FRAME_SIZE if that is larger. */
  maxDataFrame: 64 * 1024,
  /**
   * Frames that cost us work but carry no request data (PING, SETTINGS, RST_STREAM, PRIORITY, empty DATA,
   * refused streams, unknown types): a budget of `floodBurst` that refills at `floodPerSecond`. Spending more
   * ends the connection with ENHANCE_YOUR_CALM, which stops ping and settings floods and rapid reset.
   */
  floodBurst: 1000,
  floodPerSecond: 100,
  /**
   * Response bytes queued on all streams of a connection while the peer keeps its windows shut; the stream whose
   * write passes it is reset (ENHANCE_YOUR_CALM). Sized from the largest benchmarked snapshot (10,000 ingress ports
   * and 10,000 egress routes: 20,005 resources, 9.3 MiB encoded in all): every type of it queued three times over
   * still fits, so a real Envoy slow to read during a reload never meets it, while a peer that keeps its window shut
   * and asks again and again cannot queue more.
   */
  maxQueuedPerConnection: 32 * 1024 * 1024,
  /**
   * Bytes waiting in the socket. An answer the peer asked for (PING, SETTINGS ACK) past it ends the connection with
   * GOAWAY; any other frame past it drops the connection at once. DATA is written only while the socket drains, so a
   * peer that reads never comes near it.
   */
  maxSocketBacklog: 4 * 1024 * 1024,
  /**
   * A connection with no open stream for this long (from its start, or since its last stream closed) is ended with
   * GOAWAY: Envoy opens its ADS stream at once and keeps it, so an idle connection only takes one of the few the
   * server accepts (a peer holding them all silent would keep Envoy out).
   */
  idleMs: 5_000,
} as const;

/**
 * One request stream, server side. Events: 'data' (Buffer: a view of the socket's chunk, which a listener that keeps
 * it must copy, or the whole chunk stays alive), 'end', 'aborted' (reset by the peer or connection lost), 'close'.
 */
export class H2Stream extends EventEmitter {
  /** Request headers; a repeated name's values joined with ", ". */
  readonly headers: Record<string, string>;
  remoteEnded = false;
  localEnded = false;
  closed = false;
  /** Our send window for this stream; may go negative after the peer lowers SETTINGS_INITIAL_WINDOW_SIZE. */
  sendWindow: number;
  /** What the peer may still send on this stream; bytes received but not read; bytes read but not yet granted back. */
  recvWindow: number;
  unread = 0;
  recvUnacked = 0;
  /** When true, bytes count as read once the 'data' listeners return; a reader that buffers sets it false and calls read(). */
  autoRead = true;
  queue: Buffer[] = [];
  queuedBytes = 0;
  trailers: HeaderList | undefined;
  responded = false;

  constructor(
    private readonly conn: H2Connection,
    readonly id: number,
    headers: HeaderList,
  ) {
    super();
    this.sendWindow = conn.peerInitialWindow;
    this.recvWindow = conn.streamWindow;
    // No prototype: a header named like an Object.prototype member ("constructor", "__proto__") is just a header.
    const record: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [name, value] of headers) record[name] = name in record ? `${record[name]}, ${value}` : value;
    this.headers = record;
  }

  /** Sends the response headers; with endStream the response is complete (and a still-open request is reset). */
  respond(headers: Record<string, string | number>, endStream = false): void {
    if (this.closed || this.responded) return;
    this.responded = true;
    this.conn.sendHeaders(this, toList(headers), endStream);
    if (endStream) this.conn.localEnd(this);
  }

  /** Queues response bytes; they go out as the peer's windows allow. False when the stream is over. */
  write(data: Buffer): boolean {
    if (this.closed || this.localEnded || this.trailers) return false;
    if (data.length === 0) return true;
    if (!this.conn.enqueue(this, data)) return false;
    this.conn.flush();
    return true;
  }

  /** Ends the response with trailers, sent after every queued byte. */
  end(trailers: Record<string, string>): void {
    if (this.closed || this.localEnded || this.trailers) return;
    this.trailers = toList(trailers);
    this.conn.markSendable(this);
    this.conn.flush();
  }

  /** The reader is done with `bytes` of received data: the peer may send that much more. */
  read(bytes: number): void {
    this.conn.read(this, Math.min(bytes, this.unread));
  }

  /** Resets the stream now (RST_STREAM), dropping whatever is queued. */
  reset(code: number = ErrorCode.CANCEL): void {
    if (!this.closed) this.conn.resetStream(this, code);
  }
}

function toList(headers: Record<string, string | number>): HeaderList {
  return Object.entries(headers).map(([k, v]) => [k, String(v)]);
}

interface HeaderBlock {
  streamId: number;
  endStream: boolean;
  fragments: Buffer[];
  bytes: number;
  continuations: number;
}

export interface ConnectionEvents {
  /** A new request stream with its headers. */
  onStream: (stream: H2Stream) => void;
  /** A protocol error by the peer, or a socket error; the connection is already ending. */
  onError: (err: Error) => void;
}

export class H2Connection extends EventEmitter {
  readonly streams = new Map<number, H2Stream>();
  /** The peer's SETTINGS_INITIAL_WINDOW_SIZE, for new streams' send windows. */
  peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  private sendWindow = DEFAULT_WINDOW;
  private recvWindow = DEFAULT_WINDOW;
  private recvUnacked = 0;
  /** Bytes received on open streams that their readers have not read yet. */
  private unread = 0;
  /** Streams with bytes read but not yet given back; WINDOW_UPDATEs go out once per batch of frames, not per frame. */
  private readonly unacked = new Set<H2Stream>();
  /** While a socket chunk is being handled, window updates wait for its end. */
  private ingesting = false;
  private readonly decoder = new HpackDecoder(LIMITS.headerTableSize, LIMITS.maxHeaderListBytes);
  /** A partial frame (or preface), in pieces: joined once it is complete, not again on every chunk. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private prefaceSeen = false;
  private settingsSeen = false;
  private block: HeaderBlock | undefined;
  /** The highest stream id the peer opened; ids must grow and are never reused. */
  private lastPeerStreamId = 0;
  /** Streams we reset or finished early: frames the peer sent before it learnt that are ignored, not errors. */
  private readonly recentlyClosed = new Set<number>();
  private goawaySent = false;
  private peerGoaway = false;
  private dead = false;
  private floodTokens: number = LIMITS.floodBurst;
  private floodStamp = Date.now();
  /** Streams with queued data or trailers waiting for window. */
  private readonly sendable = new Set<H2Stream>();
  /** Response bytes queued on all streams. */
  queuedBytes = 0;
  private flushing = false;
  /** Runs while no stream is open (LIMITS.idleMs). */
  private idleTimer: NodeJS.Timeout | undefined;
  /** Cuts off a peer that does not read what the ending connection still sends (endSocket). */
  private endTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly events: ConnectionEvents,
    /** Our SETTINGS_INITIAL_WINDOW_SIZE: each stream's receive window. */
    readonly streamWindow: number = LIMITS.streamWindow,
  ) {
    super();
    socket.on('data', (chunk: Buffer) =>
      this.guard(() => {
        this.ingesting = true;
        try {
          this.ingest(chunk);
        } finally {
          this.ingesting = false;
        }
        this.ackWindows();
      }),
    );
    socket.on('drain', () => this.guard(() => this.flush()));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') this.events.onError(err);
    });
    socket.on('close', () => this.closed());
    // Our SETTINGS come first, without waiting for the client's preface; then the connection window grows to ours.
    this.write(
      frame(
        FrameType.SETTINGS,
        0,
        0,
        settingsPayload([
          [Setting.ENABLE_PUSH, 0],
          [Setting.MAX_CONCURRENT_STREAMS, LIMITS.maxConcurrentStreams],
          [Setting.INITIAL_WINDOW_SIZE, streamWindow],
          [Setting.MAX_HEADER_LIST_SIZE, LIMITS.maxHeaderListBytes],
        ]),
      ),
    );
    this.write(frame(FrameType.WINDOW_UPDATE, 0, 0, u32(LIMITS.connectionWindow - DEFAULT_WINDOW)));
    this.recvWindow = LIMITS.connectionWindow;
    this.watchIdle();
  }

  /** Starts the idle timer when no stream is open, stops it when one is. */
  private watchIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.dead || this.streams.size > 0) return;
    this.idleTimer = setTimeout(() => this.guard(() => this.shutdown()), LIMITS.idleMs);
    this.idleTimer.unref();
  }

  /** Graceful end: GOAWAY(NO_ERROR), no new streams, the socket closes once the open ones are done. */
  shutdown(): void {
    if (this.dead) return;
    if (!this.goawaySent) {
      this.goawaySent = true;
      this.write(frame(FrameType.GOAWAY, 0, 0, goawayPayload(this.lastPeerStreamId, ErrorCode.NO_ERROR, '')));
    }
    this.maybeFinish();
  }

  destroy(): void {
    this.dead = true;
    this.socket.destroy();
  }

  // ---- receiving ----

  private guard(fn: () => void): void {
    if (this.dead) return;
    try {
      fn();
    } catch (err) {
      if (err instanceof ConnectionError) this.fail(err.code, err.message);
      else {
        this.fail(ErrorCode.INTERNAL_ERROR, 'internal error');
        this.events.onError(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  /** Ends the connection for a connection error: GOAWAY with the code, then close once it is written. */
  private fail(code: number, reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.partial = [];
    this.partialBytes = 0;
    if (code !== ErrorCode.INTERNAL_ERROR) this.events.onError(new Error(`HTTP/2 peer error (code ${code}): ${reason}`));
    this.endSocket(frame(FrameType.GOAWAY, 0, 0, goawayPayload(this.lastPeerStreamId, code, reason)));
  }

  private ingest(chunk: Buffer): void {
    let buf = chunk;
    if (this.partialBytes > 0) {
      // The pieces are copies, so a chunk a partial frame began in is not kept alive.
      if (this.prefaceSeen && this.partialBytes + chunk.length < this.partialNeeds()) {
        this.partial.push(Buffer.from(chunk));
        this.partialBytes += chunk.length;
        return;
      }
      buf = Buffer.concat([...this.partial, chunk], this.partialBytes + chunk.length);
      this.partial = [];
      this.partialBytes = 0;
    }
    if (!this.prefaceSeen) {
      const n = Math.min(buf.length, PREFACE.length);
      if (!buf.subarray(0, n).equals(PREFACE.subarray(0, n))) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'not an HTTP/2 client preface');
      if (buf.length < PREFACE.length) {
        this.partial = [Buffer.from(buf)];
        this.partialBytes = buf.length;
        return;
      }
      this.prefaceSeen = true;
      buf = buf.subarray(PREFACE.length);
    }
    while (buf.length >= FRAME_HEADER_BYTES && !this.dead) {
      const length = buf.readUIntBE(0, 3);
      // We never raise SETTINGS_MAX_FRAME_SIZE, so the default is the limit; checked before any payload is buffered.
      if (length > DEFAULT_MAX_FRAME_SIZE) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes`);
      if (buf.length < FRAME_HEADER_BYTES + length) break;
      const type = buf[3] ?? 0;
      const flags = buf[4] ?? 0;
      const streamId = buf.readUInt32BE(5) & MAX_WINDOW;
      const payload = buf.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length);
      buf = buf.subarray(FRAME_HEADER_BYTES + length);
      this.onFrame(type, flags, streamId, payload);
    }
    // Keep only a copy of a partial frame (at most one frame), not the whole chunk it came in.
    if (buf.length > 0 && !this.dead) {
      this.partial = [Buffer.from(buf)];
      this.partialBytes = buf.length;
    }
  }

  /** Bytes the partial frame needs before it can be parsed: its header, then (known once the header is in) the whole frame. */
  private partialNeeds(): number {
    const first = this.partial[0];
    // The first piece holds the whole header whenever there is one (a header split over pieces is joined at once).
    if (!first || first.length < FRAME_HEADER_BYTES) return FRAME_HEADER_BYTES;
    return FRAME_HEADER_BYTES + first.readUIntBE(0, 3);
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (!this.settingsSeen) {
      if (type !== FrameType.SETTINGS || flags & Flag.ACK) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'the first frame must be SETTINGS');
      this.settingsSeen = true;
    }
    if (this.block && type !== FrameType.CONTINUATION) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'a header block was interrupted by another frame');
    switch (type) {
      case FrameType.DATA:
        return this.onData(flags, streamId, payload);
      case FrameType.HEADERS:
        return this.onHeaders(flags, streamId, payload);
      case FrameType.PRIORITY:
        if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY frame is not 5 bytes');
        return this.spend('PRIORITY');
      case FrameType.RST_STREAM:
        return this.onRstStream(streamId, payload);
      case FrameType.SETTINGS:
        return this.onSettings(flags, streamId, payload);
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'a client cannot send PUSH_PROMISE');
      case FrameType.PING:
        if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
        if (payload.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING frame is not 8 bytes');
        if (flags & Flag.ACK) return;
        this.spend('PING');
        return this.writeControl(frame(FrameType.PING, Flag.ACK, 0, Buffer.from(payload)));
      case FrameType.GOAWAY:
        if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
        if (payload.length < 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY frame shorter than 8 bytes');
        this.peerGoaway = true;
        return this.maybeFinish();
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(streamId, payload);
      case FrameType.CONTINUATION:
        return this.onContinuation(flags, streamId, payload);
      default:
        // Unknown frame types are ignored (extensions), but still count against the flood budget.
        return this.spend('unknown frame type');
    }
  }

  /** Spends one unit of the flood budget; an empty budget ends the connection with ENHANCE_YOUR_CALM. */
  private spend(what: string): void {
    const now = Date.now();
    this.floodTokens = Math.min(LIMITS.floodBurst, this.floodTokens + ((now - this.floodStamp) / 1000) * LIMITS.floodPerSecond);
    this.floodStamp = now;
    this.floodTokens -= 1;
    if (this.floodTokens < 0) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `too many ${what} frames`);
  }

  /** A frame for a stream id that is not open: ignored if we closed it recently, else a connection error. */
  private unknownStream(streamId: number, what: string): void {
    if (streamId % 2 === 0 || streamId > this.lastPeerStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `${what} on idle stream ${streamId}`);
    // A closed stream: what the peer sent before it saw our RST_STREAM or END_STREAM is harmless; it costs budget.
    this.spend(what + ' on a closed stream');
  }

  private onData(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    const data = unpad(flags, payload, 'DATA');
    // Flow control counts the whole payload, padding included.
    if (payload.length > this.recvWindow) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    this.recvWindow -= payload.length;
    const stream = this.streams.get(streamId);
    if (!stream || stream.remoteEnded) {
      this.grant(undefined, payload.length);
      if (!stream) return this.unknownStream(streamId, 'DATA');
      return this.resetStream(stream, ErrorCode.STREAM_CLOSED);
    }
    if (payload.length > stream.recvWindow) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, `DATA beyond the window of stream ${streamId}`);
    stream.recvWindow -= payload.length;
    const end = (flags & Flag.END_STREAM) !== 0;
    // A frame without data (padding only, or nothing) costs work and brings no request forward.
    if (data.length === 0 && !end) this.spend('empty DATA');
    // Padding is read as soon as it arrives; the data when the reader says so.
    stream.unread += data.length;
    this.unread += data.length;
    this.grant(stream, payload.length - data.length);
    if (data.length > 0) {
      stream.emit('data', data);
      if (stream.autoRead) this.read(stream, data.length);
    }
    if (end && !stream.closed) this.remoteEnd(stream);
  }

  /** A stream's reader is done with `bytes`: they leave the unread count and the windows are given back. */
  read(stream: H2Stream, bytes: number): void {
    if (bytes <= 0 || stream.closed) return;
    stream.unread -= bytes;
    this.unread -= bytes;
    this.grant(stream, bytes);
  }

  /** Counts read bytes to give back to the peer; the WINDOW_UPDATEs go out from ackWindows(). */
  private grant(stream: H2Stream | undefined, bytes: number): void {
    if (bytes <= 0 || this.dead) return;
    this.recvUnacked += bytes;
    if (stream && !stream.closed && !stream.remoteEnded) {
      stream.recvUnacked += bytes;
      this.unacked.add(stream);
    }
    if (!this.ingesting) this.ackWindows();
  }

  /**
   * Sends the WINDOW_UPDATEs due, at most one per stream and one for the connection per batch of frames: when the
   * bytes not yet given back reach a share of the window, or at once while data is unread (a reader holding part of
   * a message needs the rest, and the peer may be blocked on the window that part took). A peer that sends many tiny
   * frames thus gets a few small frames back per socket chunk, not two per frame.
   */
  private ackWindows(): void {
    if (this.dead) return;
    for (const s of this.unacked) {
      if (s.closed || s.remoteEnded) s.recvUnacked = 0;
      else if (s.recvUnacked > 0 && (s.recvUnacked >= this.streamWindow * LIMITS.windowUpdateShare || s.unread > 0)) {
        this.write(frame(FrameType.WINDOW_UPDATE, 0, s.id, u32(s.recvUnacked)));
        s.recvWindow += s.recvUnacked;
        s.recvUnacked = 0;
      }
      if (s.recvUnacked === 0) this.unacked.delete(s);
    }
    if (this.recvUnacked > 0 && (this.recvUnacked >= LIMITS.connectionWindow * LIMITS.windowUpdateShare || this.unread > 0)) {
      this.write(frame(FrameType.WINDOW_UPDATE, 0, 0, u32(this.recvUnacked)));
      this.recvWindow += this.recvUnacked;
      this.recvUnacked = 0;
    }
  }

  private onHeaders(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0 || streamId % 2 === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `HEADERS on stream ${streamId}`);
    let fragment = unpad(flags, payload, 'HEADERS');
    if (flags & Flag.PRIORITY) {
      if (fragment.length < 5) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS too short for its priority fields');
      fragment = fragment.subarray(5);
    }
    this.block = { streamId, endStream: (flags & Flag.END_STREAM) !== 0, fragments: [], bytes: 0, continuations: 0 };
    this.addFragment(fragment, flags);
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const block = this.block;
    if (!block || block.streamId !== streamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without a header block in progress');
    block.continuations += 1;
    if (block.continuations > LIMITS.maxContinuations) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'too many CONTINUATION frames');
    this.addFragment(payload, flags);
  }

  private addFragment(fragment: Buffer, flags: number): void {
    const block = this.block;
    if (!block) return;
    block.bytes += fragment.length;
    if (block.bytes > LIMITS.maxHeaderBlockBytes)
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `header block larger than ${LIMITS.maxHeaderBlockBytes} bytes`);
    // Copied: the fragment is a view of the socket chunk, which would otherwise stay alive.
    block.fragments.push(Buffer.from(fragment));
    if (flags & Flag.END_HEADERS) {
      this.block = undefined;
      this.onHeaderBlock(block);
    }
  }

  private onHeaderBlock(block: HeaderBlock): void {
    let headers: HeaderList;
    // Every block is decoded, even for a stream we refuse: the peer's encoder has already updated its table.
    try {
      headers = this.decoder.decode(Buffer.concat(block.fragments, block.bytes));
    } catch (err) {
      if (err instanceof HpackError) throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, err.message);
      if (err instanceof HeaderListTooLarge) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, err.message);
      throw err;
    }
    const { streamId, endStream } = block;
    const existing = this.streams.get(streamId);
    if (existing) {
      // Request trailers: they must end the stream; their contents are not used.
      if (existing.remoteEnded) return this.resetStream(existing, ErrorCode.STREAM_CLOSED);
      if (!endStream) return this.resetStream(existing, ErrorCode.PROTOCOL_ERROR);
      return this.remoteEnd(existing);
    }
    if (streamId <= this.lastPeerStreamId) {
      if (this.recentlyClosed.has(streamId)) return this.spend('HEADERS on a closed stream');
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `stream id ${streamId} is not above ${this.lastPeerStreamId}`);
    }
    this.lastPeerStreamId = streamId;
    if (this.goawaySent || this.peerGoaway || this.streams.size >= LIMITS.maxConcurrentStreams) {
      this.spend('refused stream');
      return this.rst(streamId, ErrorCode.REFUSED_STREAM);
    }
    // Every stream opened spends budget too: opening streams that end at once (or are refused for their headers)
    // would otherwise cost us a handler, log lines and frames per 13 bytes, without limit.
    this.spend('stream-opening HEADERS');
    if (!validRequestHeaders(headers)) return this.rst(streamId, ErrorCode.PROTOCOL_ERROR);
    const stream = new H2Stream(this, streamId, headers);
    this.streams.set(streamId, stream);
    this.watchIdle();
    // A request without a body is ended before its handler runs, so a response that ends at once closes the stream
    // without a reset; the 'end' event follows once the handler has its listeners on.
    if (endStream) stream.remoteEnded = true;
    this.events.onStream(stream);
    if (endStream && !stream.closed) this.remoteEnd(stream);
  }

  private onRstStream(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM frame is not 4 bytes');
    // Every reset spends budget: opening and resetting streams in a loop (rapid reset) runs it out.
    this.spend('RST_STREAM');
    const stream = this.streams.get(streamId);
    if (!stream) return this.unknownStream(streamId, 'RST_STREAM');
    this.closeStream(stream, true);
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & Flag.ACK) {
      if (payload.length !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS length is not a multiple of 6');
    this.spend('SETTINGS');
    for (let i = 0; i < payload.length; i += 6) {
      const id = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      if (id === Setting.ENABLE_PUSH && value > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH above 1');
      if (id === Setting.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1');
        // The change applies to every open stream's send window, which may go negative.
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const s of this.streams.values()) {
          s.sendWindow += delta;
          if (s.sendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'a stream window above 2^31-1');
        }
      }
      if (id === Setting.MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME_SIZE || value > LARGEST_MAX_FRAME_SIZE)
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value} out of range`);
        this.peerMaxFrameSize = value;
      }
      // HEADER_TABLE_SIZE: our encoder never indexes, so any size suits it. The others do not concern a server that never pushes.
    }
    this.writeControl(frame(FrameType.SETTINGS, Flag.ACK, 0));
    this.flush();
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE frame is not 4 bytes');
    const increment = payload.readUInt32BE(0) & MAX_WINDOW;
    if (streamId === 0) {
      if (increment === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0 on the connection');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      return this.flush();
    }
    const stream = this.streams.get(streamId);
    if (!stream) return this.unknownStream(streamId, 'WINDOW_UPDATE');
    if (increment === 0) return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) return this.resetStream(stream, ErrorCode.FLOW_CONTROL_ERROR);
    this.flush();
  }

  // ---- stream state ----

  /** The peer ended its side (END_STREAM). */
  private remoteEnd(stream: H2Stream): void {
    stream.remoteEnded = true;
    stream.emit('end');
    if (stream.localEnded) this.closeStream(stream, false);
  }

  /** We ended our side (END_STREAM sent): the response is complete, so a request still open is reset with NO_ERROR. */
  localEnd(stream: H2Stream): void {
    stream.localEnded = true;
    this.sendable.delete(stream);
    if (stream.remoteEnded) this.closeStream(stream, false);
    else this.resetStream(stream, ErrorCode.NO_ERROR);
  }

  /** Sends RST_STREAM for an open stream and closes it. */
  resetStream(stream: H2Stream, code: number): void {
    if (stream.closed) return;
    this.rst(stream.id, code);
    this.closeStream(stream, code !== ErrorCode.NO_ERROR);
  }

  private rst(streamId: number, code: number): void {
    this.rememberClosed(streamId);
    this.write(frame(FrameType.RST_STREAM, 0, streamId, u32(code)));
  }

  private rememberClosed(streamId: number): void {
    this.recentlyClosed.add(streamId);
    // A few recent ids are enough: a peer acts on our reset within a round trip.
    if (this.recentlyClosed.size > 64) {
      const oldest = this.recentlyClosed.values().next().value;
      if (oldest !== undefined) this.recentlyClosed.delete(oldest);
    }
  }

  private closeStream(stream: H2Stream, aborted: boolean): void {
    if (stream.closed) return;
    stream.closed = true;
    // Whatever its reader never read is given back to the connection.
    const unread = stream.unread;
    stream.unread = 0;
    this.unread -= unread;
    this.grant(undefined, unread);
    this.unacked.delete(stream);
    this.queuedBytes -= stream.queuedBytes;
    stream.queue = [];
    stream.queuedBytes = 0;
    this.sendable.delete(stream);
    this.streams.delete(stream.id);
    this.watchIdle();
    if (!stream.remoteEnded || !stream.localEnded) this.rememberClosed(stream.id);
    if (aborted) stream.emit('aborted');
    stream.emit('close');
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if ((this.goawaySent || this.peerGoaway) && this.streams.size === 0 && !this.dead) {
      this.dead = true;
      this.endSocket();
    }
  }

  /**
   * Closes the socket after what is queued (and `last`) is written; a peer that stops reading is cut off after a
   * second. The timer goes when the socket closes, however it closed (a peer that resets it first never lets the
   * end's callback run): no timer outlives its connection.
   */
  private endSocket(last?: Buffer): void {
    clearTimeout(this.endTimer);
    this.endTimer = setTimeout(() => this.socket.destroy(), 1000);
    this.endTimer.unref();
    this.socket.end(last ?? Buffer.alloc(0), () => {
      clearTimeout(this.endTimer);
      this.socket.destroy();
    });
  }

  /**
   * The socket is gone: every open stream is aborted. Not through guard (the connection is usually dead already),
   * but a throw from a stream's listener must not escape the socket's event handler (uncaught, it would end
   * meshlet) nor keep the other streams and the connection's own listeners from hearing of it.
   */
  private closed(): void {
    this.dead = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.endTimer);
    for (const stream of [...this.streams.values()]) this.report(() => this.closeStream(stream, true));
    this.report(() => this.emit('close'));
  }

  private report(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.events.onError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  // ---- sending ----

  /** Queues response bytes on a stream; past the connection's bound the stream is reset instead. */
  enqueue(stream: H2Stream, data: Buffer): boolean {
    if (this.queuedBytes + data.length > LIMITS.maxQueuedPerConnection) {
      this.events.onError(new Error(`HTTP/2 peer keeps its window shut: more than ${LIMITS.maxQueuedPerConnection} response bytes queued; stream reset`));
      this.resetStream(stream, ErrorCode.ENHANCE_YOUR_CALM);
      return false;
    }
    stream.queue.push(data);
    stream.queuedBytes += data.length;
    this.queuedBytes += data.length;
    this.markSendable(stream);
    return true;
  }

  /** A stream has data or trailers to send; added here too so a write during flush() (from a listener) is not missed. */
  markSendable(stream: H2Stream): void {
    if (!stream.closed && !stream.localEnded) this.sendable.add(stream);
  }

  /**
   * Every frame but flush()'s DATA goes out here. A peer that sends but never reads would make our output pile up
   * in the socket; past the backlog bound the connection is dropped at once (no GOAWAY: the peer does not read it).
   * It does not throw, as application calls (respond, end, reset) reach it too.
   */
  private write(data: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    if (this.socket.writableLength > LIMITS.maxSocketBacklog) {
      if (!this.dead) this.events.onError(new Error('HTTP/2 peer does not read: our output backlog passed its bound; connection dropped'));
      this.dead = true;
      this.socket.destroy();
      return;
    }
    this.socket.write(data);
  }

  /** An answer the peer asked for (PING, SETTINGS ACK): refused when the peer lets our output pile up unread. */
  private writeControl(data: Buffer): void {
    if (this.socket.writableLength > LIMITS.maxSocketBacklog) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'the peer does not read');
    this.write(data);
  }

  sendHeaders(stream: H2Stream, headers: HeaderList, endStream: boolean): void {
    const block = encodeHeaders(headers, LIMITS.maxResponseHeaderBytes);
    const max = this.peerMaxFrameSize;
    let offset = 0;
    let type: number = FrameType.HEADERS;
    do {
      const part = block.subarray(offset, offset + max);
      offset += part.length;
      const last = offset >= block.length;
      const flags = (last ? Flag.END_HEADERS : 0) | (type === FrameType.HEADERS && endStream ? Flag.END_STREAM : 0);
      this.write(Buffer.concat([frameHeader(part.length, type, flags, stream.id), part]));
      type = FrameType.CONTINUATION;
    } while (offset < block.length);
  }

  /**
   * Sends queued data round-robin, one frame per stream per pass, within the connection window, each stream's
   * window and the peer's frame size, while the socket takes it; then each drained stream's trailers.
   */
  flush(): void {
    if (this.flushing || this.dead) return;
    this.flushing = true;
    // Corked, so each frame's header and payload leave in one write.
    this.socket.cork();
    try {
      for (const s of this.streams.values()) if ((s.queue.length > 0 || s.trailers) && !s.localEnded) this.sendable.add(s);
      const maxFrame = Math.min(this.peerMaxFrameSize, LIMITS.maxDataFrame);
      let progressed = true;
      while (progressed && this.sendable.size > 0 && !this.socket.writableNeedDrain && !this.socket.destroyed) {
        progressed = false;
        for (const s of [...this.sendable]) {
          const head = s.queue[0];
          if (head) {
            const n = Math.min(head.length, this.sendWindow, s.sendWindow, maxFrame);
            if (n <= 0) continue;
            this.socket.write(frameHeader(n, FrameType.DATA, 0, s.id));
            this.socket.write(head.subarray(0, n));
            if (n === head.length) s.queue.shift();
            else s.queue[0] = head.subarray(n);
            s.queuedBytes -= n;
            this.queuedBytes -= n;
            this.sendWindow -= n;
            s.sendWindow -= n;
            progressed = true;
          }
          if (s.queue.length === 0) {
            this.sendable.delete(s);
            if (s.trailers && !s.localEnded) {
              this.sendHeaders(s, s.trailers, true);
              this.localEnd(s);
              progressed = true;
            }
          }
          if (this.socket.writableNeedDrain) break;
        }
      }
    } finally {
      this.flushing = false;
      this.socket.uncork();
    }
  }
}

/** Strips padding (PADDED flag: a length byte, then the padding at the end). */
function unpad(flags: number, payload: Buffer, what: string): Buffer {
  if (!(flags & Flag.PADDED)) return payload;
  if (payload.length < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `padded ${what} frame without its pad length`);
  const pad = payload[0] ?? 0;
  if (pad >= payload.length) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `${what} padding longer than the frame`);
  return payload.subarray(1, payload.length - pad);
}

const PSEUDO = new Set([':method', ':path', ':scheme', ':authority']);

/** A request's header list: the pseudo-headers a request needs, known ones only, before the rest; names lowercase. */
function validRequestHeaders(headers: HeaderList): boolean {
  let regular = false;
  const seen = new Set<string>();
  for (const [name] of headers) {
    if (name.startsWith(':')) {
      if (regular || !PSEUDO.has(name) || seen.has(name)) return false;
      seen.add(name);
    } else {
      regular = true;
      if (name !== name.toLowerCase() || name === 'connection') return false;
    }
  }
  return seen.has(':method') && seen.has(':path') && seen.has(':scheme');
}
