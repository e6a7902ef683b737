// The ADS gRPC server on a Unix socket: owns the current snapshot and the
// connected streams, and fans each new snapshot out to every stream. It may
// listen before it has a snapshot (meshlet run starts Envoy first and builds
// the snapshot while Envoy boots): a stream that opens meanwhile gets nothing
// until the first snapshot is installed, as an empty answer would be ACKed and
// would leave Envoy with no clusters or listeners.
import type { Logger } from '../log.js';
import { GrpcServer, Status, type ServerCall } from './grpc.js';
import { adsMethods, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse, type DiscoveryRequest, type DiscoveryResponse } from './service.js';
import type { Snapshot } from './snapshot.js';
import {
  Signal,
  type AckEvent,
  type AdsStatus,
  type DisconnectEvent,
  type StreamEvent,
  type TypesInSync,
  type Listener,
  type NackEvent,
  type RequestEvent,
  type ResponseEvent,
  type XdsSignals,
} from './events.js';
import { SotwStream } from './sotw.js';
import { DeltaStream } from './delta.js';
import { peerText, type StreamContext } from './stream.js';
import { LimitExceeded } from './interest.js';
import { prepareSocketPath, removeSocket, restrictSocket, withSocketUmask } from './socket.js';
const path = process.getBuiltinModule('node:path');

export interface AdsServerOptions {
  /** Absolute path of the Unix socket Envoy connects to. */
  socketPath: string;
  /** A component logger; each stream logs through a child of it. */
  logger: Logger;
  /** The first snapshot. Without it, streams get no response until setSnapshot installs one. */
  snapshot?: Snapshot;
  /** Clock for status timestamps. */
  now?: () => Date;
}

interface Attached {
  stream: SotwStream | DeltaStream;
  end: () => void;
  /** Handles the requests held while there was no snapshot, then handles new ones as they come. */
  release: () => void;
}

/**
 * Requests one stream may send before the first snapshot. Envoy sends one per
 * type it subscribes to (clusters and listeners; secrets only once it has
 * those), so this is far above what it needs. Delta requests are incremental,
 * so held requests are kept in order, not collapsed per type.
 */
export const MAX_HELD_REQUESTS = 16;

/**
 * Request bytes (as received) one stream may have held before the first snapshot. A request may be up to 4 MiB,
 * so the count alone would let a peer hold 64 MiB per stream. Envoy's first request carries its node (with the
 * list of its extensions, some tens of KiB); the ones after it are a few hundred bytes.
 */
export const MAX_HELD_BYTES = 256 * 1024;

export class AdsServer {
  private readonly server: GrpcServer;
  private readonly socketPath: string;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly signals: XdsSignals;
  private readonly streams = new Map<number, Attached>();
  private snapshot: Snapshot | undefined;
  private streamCounter = 0;
  private closing: Promise<void> | undefined;

  constructor(opts: AdsServerOptions) {
    this.socketPath = path.resolve(opts.socketPath);
    this.log = opts.logger;
    this.now = opts.now ?? (() => new Date());
    this.snapshot = opts.snapshot;
    const onListenerError = (err: unknown): void => this.log.error({ err }, 'xDS event listener threw');
    this.signals = {
      request: new Signal(onListenerError),
      response: new Signal(onListenerError),
      ack: new Signal(onListenerError),
      nack: new Signal(onListenerError),
      stream: new Signal(onListenerError),
      disconnect: new Signal(onListenerError),
    };
    this.server = new GrpcServer((err) => this.log.warn({ err: err.message }, 'xDS connection error'));
    const [sotw, delta] = adsMethods({ sotw: (call) => this.attachSotw(call), delta: (call) => this.attachDelta(call) });
    this.server.addMethod(sotw);
    this.server.addMethod(delta);
  }

  onRequest(listener: Listener<RequestEvent>): () => void {
    return this.signals.request.on(listener);
  }
  onResponse(listener: Listener<ResponseEvent>): () => void {
    return this.signals.response.on(listener);
  }
  onAck(listener: Listener<AckEvent>): () => void {
    return this.signals.ack.on(listener);
  }
  onNack(listener: Listener<NackEvent>): () => void {
    return this.signals.nack.on(listener);
  }
  /** An ADS stream opened: a process reached the socket and called the ADS method (requests may still be held). */
  onStream(listener: Listener<StreamEvent>): () => void {
    return this.signals.stream.on(listener);
  }
  /** A stream ended (Envoy went away, or close()). */
  onDisconnect(listener: Listener<DisconnectEvent>): () => void {
    return this.signals.disconnect.on(listener);
  }

  /** Binds the socket (mode 0600) and starts serving. */
  async listen(): Promise<void> {
    await this.prepare();
    await this.bind();
  }

  /** listen()'s first half: the socket's directory, and a stale socket of a dead process removed (a live one refused). */
  prepare(): Promise<void> {
    return prepareSocketPath(this.socketPath);
  }

  /** listen()'s second half, after prepare(): binds the socket (mode 0600) and starts serving. */
  async bind(): Promise<void> {
    await withSocketUmask(() => this.server.listen(this.socketPath));
    restrictSocket(this.socketPath);
    this.log.info({ socket: this.socketPath }, 'xDS server listening');
  }

  /** Replaces the served snapshot and pushes what changed to every stream; the first one also answers the requests held until now. */
  setSnapshot(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    for (const { stream, release } of this.streams.values()) {
      release();
      stream.onSnapshot();
    }
  }

  /** Whether a snapshot is installed (until then, streams are held unanswered). */
  hasSnapshot(): boolean {
    return this.snapshot !== undefined;
  }

  currentSnapshot(): Snapshot {
    if (!this.snapshot) throw new Error('internal: no xDS snapshot installed yet');
    return this.snapshot;
  }

  status(): AdsStatus {
    const types: AdsStatus['types'] = {};
    for (const t of Object.values(this.snapshot?.types ?? {})) types[t.typeUrl] = { version: t.version, names: [...t.resources.keys()] };
    return { types, envoys: [...this.streams.values()].map((a) => a.stream.status()) };
  }

  /** Per stream, whether each subscribed type is in sync: status() without the names, for every ACK. */
  sync(): { types: TypesInSync }[] {
    return [...this.streams.values()].map((a) => ({ types: a.stream.sync() }));
  }

  /** Ends every stream, stops the server (forcing it after graceMs) and removes the socket. */
  close(graceMs = 2000): Promise<void> {
    this.closing ??= this.shutdown(graceMs);
    return this.closing;
  }

  private async shutdown(graceMs: number): Promise<void> {
    for (const a of this.streams.values()) a.end();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.log.warn({ graceMs }, 'xDS server did not drain in time; forcing shutdown');
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    removeSocket(this.socketPath);
    this.log.info({ socket: this.socketPath }, 'xDS server closed');
  }

  private context(): StreamContext {
    this.streamCounter += 1;
    const streamId = this.streamCounter;
    // Streams handle requests only once a snapshot is installed (attach holds them until then).
    return { streamId, log: this.log, signals: this.signals, snapshot: () => this.currentSnapshot(), now: this.now };
  }

  private attachSotw(call: ServerCall<DiscoveryRequest, DiscoveryResponse>): void {
    const stream = new SotwStream(this.context(), (res) => writeTo(call, res));
    this.attach(call, stream, (req) => stream.handle(req));
  }

  private attachDelta(call: ServerCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse>): void {
    const stream = new DeltaStream(this.context(), (res) => writeTo(call, res));
    this.attach(call, stream, (req) => stream.handle(req));
  }

  private attach<Req extends { type_url: string; response_nonce: string }, Res>(
    call: ServerCall<Req, Res>,
    stream: SotwStream | DeltaStream,
    handle: (req: Req) => void,
  ): void {
    const id = stream.streamId;
    if (this.closing) return void call.end();
    let detached = false;
    const detach = (reason: string): void => {
      if (detached) return;
      detached = true;
      this.streams.delete(id);
      stream.closed(reason);
    };
    const handleOne = (req: Req): void => {
      if (detached) return;
      try {
        handle(req);
      } catch (err) {
        const fields = { streamId: id, nodeId: stream.nodeId, typeUrl: peerText(req.type_url), version: '', nonce: peerText(req.response_nonce) };
        if (err instanceof LimitExceeded) {
          this.log.warn({ ...fields, err: err.message }, 'xDS stream asked for more than meshlet allows; ending it');
          detach(err.message);
          call.fail(Status.RESOURCE_EXHAUSTED, `meshlet: ${err.message}`);
          return;
        }
        this.log.error({ err, ...fields }, 'xDS stream failed handling a request; ending it so Envoy reconnects');
        detach('internal error');
        call.fail(Status.INTERNAL, 'meshlet: internal error handling the request');
      }
    };
    // Without a snapshot, requests wait here; release() hands them over in order once one is installed.
    let held: Req[] | undefined = this.snapshot ? undefined : [];
    let heldBytes = 0;
    const release = (): void => {
      const pending = held;
      held = undefined;
      for (const req of pending ?? []) handleOne(req);
    };
    this.streams.set(id, { stream, end: () => call.end(), release });
    this.signals.stream.emit({ streamId: id, kind: stream.kind });
    call.on('data', (req: Req, bytes: number) => {
      if (!held) {
        handleOne(req);
        return;
      }
      if (held.length >= MAX_HELD_REQUESTS) {
        this.log.warn({ streamId: id, held: held.length }, 'xDS stream sent too many requests before the first snapshot; ending it');
        detach('too many requests before the first snapshot');
        call.fail(Status.RESOURCE_EXHAUSTED, `meshlet: more than ${MAX_HELD_REQUESTS} requests before the first snapshot`);
        return;
      }
      heldBytes += bytes;
      if (heldBytes > MAX_HELD_BYTES) {
        this.log.warn({ streamId: id, held: held.length, heldBytes }, 'xDS stream sent too many request bytes before the first snapshot; ending it');
        detach('too many request bytes before the first snapshot');
        call.fail(Status.RESOURCE_EXHAUSTED, `meshlet: more than ${MAX_HELD_BYTES} request bytes before the first snapshot`);
        return;
      }
      held.push(req);
      // Once per stream at info (Envoy's stream opened before the snapshot was built), each further one at debug.
      this.log[held.length === 1 ? 'info' : 'debug'](
        { streamId: id, typeUrl: peerText(req.type_url), held: held.length },
        'xDS request held until the first snapshot',
      );
    });
    // Envoy half-closed its side: finish ours, as the stream is over.
    call.on('end', () => {
      detach('client ended the stream');
      call.end();
    });
    call.on('cancelled', () => detach('client cancelled'));
    call.on('error', (err: Error) => detach(`error: ${err.message}`));
    call.on('close', () => detach('closed'));
  }
}

function writeTo<Req, Res>(call: ServerCall<Req, Res>, res: Res): void {
  if (call.cancelled || call.writableEnded) return;
  call.write(res);
}
