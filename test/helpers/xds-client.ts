// A minimal ADS client over a real grpc-js stream, for protocol tests: send
// requests the way Envoy does (node on the first request only) and await the
// next response. Also `waitFor`, to await a server event.
import { Client, credentials, type ClientDuplexStream } from '@grpc/grpc-js';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse } from '../../src/xds/service.js';
import { TYPE, type JsonObject } from '../../src/xds/protos.js';
import { codec, decodeAny } from '../../src/xds/reflect.js';
import type { AckEvent, DisconnectEvent, Listener, NackEvent, RequestEvent, ResponseEvent } from '../../src/xds/events.js';
import type { AdsServer } from '../../src/xds/server.js';

const DEFAULT_TIMEOUT = 5000;

/** A bidi stream whose responses queue up until a test takes them. */
class TestStream<Req, Res> {
  readonly received: Res[] = [];
  /** Resolves with the gRPC status once the stream is over. */
  readonly finished: Promise<{ code: number; details: string }>;
  private readonly queue: Res[] = [];
  private readonly waiters: ((res: Res) => void)[] = [];

  constructor(private readonly call: ClientDuplexStream<Req, Res>) {
    call.on('data', (res: Res) => {
      this.received.push(res);
      const waiter = this.waiters.shift();
      if (waiter) waiter(res);
      else this.queue.push(res);
    });
    // Cancelling emits an error; the status below is what tests look at.
    call.on('error', () => undefined);
    this.finished = new Promise((resolve) => call.on('status', (s: { code: number; details: string }) => resolve(s)));
  }

  write(req: Req): void {
    this.call.write(req);
  }

  /** The next response not yet taken. */
  next(timeoutMs = DEFAULT_TIMEOUT): Promise<Res> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no xDS response within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (res: Res): void => {
        clearTimeout(timer);
        resolve(res);
      };
      this.waiters.push(waiter);
    });
  }

  /** Responses received but not yet taken with next(). */
  pending(): number {
    return this.queue.length;
  }

  /** Half-closes, as an Envoy shutting down would. */
  end(): void {
    this.call.end();
  }

  cancel(): void {
    this.call.cancel();
  }
}

export interface SotwRequestOptions {
  names?: string[];
  version?: string;
  nonce?: string;
  error?: string;
}

export class SotwClient extends TestStream<DiscoveryRequest, DiscoveryResponse> {
  private sentNode = false;

  constructor(
    call: ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>,
    readonly nodeId: string,
  ) {
    super(call);
  }

  request(typeUrl: string, opts: SotwRequestOptions = {}): void {
    const node = this.sentNode ? null : { id: this.nodeId, cluster: 'test' };
    this.sentNode = true;
    this.write({
      version_info: opts.version ?? '',
      node,
      resource_names: opts.names ?? [],
      type_url: typeUrl,
      response_nonce: opts.nonce ?? '',
      error_detail: opts.error === undefined ? null : { code: 3, message: opts.error },
    });
  }

  ack(res: DiscoveryResponse, names: string[] = []): void {
    this.request(res.type_url, { names, version: res.version_info, nonce: res.nonce });
  }

  /** NACKs `res`, reporting `lastGood` as the version still applied, as Envoy does. */
  nack(res: DiscoveryResponse, lastGood: string, error: string, names: string[] = []): void {
    this.request(res.type_url, { names, version: lastGood, nonce: res.nonce, error });
  }
}

export interface DeltaRequestOptions {
  subscribe?: string[];
  unsubscribe?: string[];
  initial?: Record<string, string>;
  nonce?: string;
  error?: string;
}

export class DeltaClient extends TestStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
  private sentNode = false;

  constructor(
    call: ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>,
    readonly nodeId: string,
  ) {
    super(call);
  }

  request(typeUrl: string, opts: DeltaRequestOptions = {}): void {
    const node = this.sentNode ? null : { id: this.nodeId, cluster: 'test' };
    this.sentNode = true;
    this.write({
      node,
      type_url: typeUrl,
      resource_names_subscribe: opts.subscribe ?? [],
      resource_names_unsubscribe: opts.unsubscribe ?? [],
      initial_resource_versions: opts.initial ?? {},
      response_nonce: opts.nonce ?? '',
      error_detail: opts.error === undefined ? null : { code: 3, message: opts.error },
    });
  }

  ack(res: DeltaDiscoveryResponse): void {
    this.request(res.type_url, { nonce: res.nonce });
  }

  nack(res: DeltaDiscoveryResponse, error: string): void {
    this.request(res.type_url, { nonce: res.nonce, error });
  }
}

const SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService';

/**
 * One gRPC channel to the ADS socket; opens SotW and Delta streams on it.
 * A client independent of the server's code: grpc-js, with messages through
 * protobufjs reflection over the .proto files.
 */
export class AdsTestClient {
  private readonly client: Client;
  private readonly streams: { cancel: () => void }[] = [];

  constructor(socketPath: string) {
    this.client = new Client(`unix:${socketPath}`, credentials.createInsecure());
  }

  sotw(nodeId: string): SotwClient {
    const call = this.client.makeBidiStreamRequest<DiscoveryRequest, DiscoveryResponse>(
      `${SERVICE}/StreamAggregatedResources`,
      codec<DiscoveryRequest>(TYPE.discoveryRequest).serialize,
      codec<DiscoveryResponse>(TYPE.discoveryResponse).deserialize,
    );
    const s = new SotwClient(call, nodeId);
    this.streams.push(s);
    return s;
  }

  delta(nodeId: string): DeltaClient {
    const call = this.client.makeBidiStreamRequest<DeltaDiscoveryRequest, DeltaDiscoveryResponse>(
      `${SERVICE}/DeltaAggregatedResources`,
      codec<DeltaDiscoveryRequest>(TYPE.deltaRequest).serialize,
      codec<DeltaDiscoveryResponse>(TYPE.deltaResponse).deserialize,
    );
    const s = new DeltaClient(call, nodeId);
    this.streams.push(s);
    return s;
  }

  close(): void {
    for (const s of this.streams) s.cancel();
    this.client.close();
  }
}

/** Names of the resources in a SotW response, decoded through the real protobuf types. */
export function decodeSotw(res: DiscoveryResponse): JsonObject[] {
  return res.resources.map((r) => decodeAny(r));
}

export function names(res: DiscoveryResponse | DeltaDiscoveryResponse): string[] {
  if ('version_info' in res) return decodeSotw(res).map((r) => (typeof r['name'] === 'string' ? r['name'] : ''));
  return res.resources.map((r) => r.name);
}

export interface AdsEvents {
  request: RequestEvent;
  response: ResponseEvent;
  ack: AckEvent;
  nack: NackEvent;
  disconnect: DisconnectEvent;
}

function subscribe<K extends keyof AdsEvents>(server: AdsServer, kind: K, listener: Listener<AdsEvents[K]>): () => void {
  const on = {
    request: (l: Listener<RequestEvent>) => server.onRequest(l),
    response: (l: Listener<ResponseEvent>) => server.onResponse(l),
    ack: (l: Listener<AckEvent>) => server.onAck(l),
    nack: (l: Listener<NackEvent>) => server.onNack(l),
    disconnect: (l: Listener<DisconnectEvent>) => server.onDisconnect(l),
  }[kind] as (l: Listener<AdsEvents[K]>) => () => void;
  return on(listener);
}

/** Resolves with the next server event of `kind` matching `pred`. */
export function waitFor<K extends keyof AdsEvents>(
  server: AdsServer,
  kind: K,
  pred: (e: AdsEvents[K]) => boolean = () => true,
  timeoutMs = DEFAULT_TIMEOUT,
): Promise<AdsEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching xDS ${kind} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = subscribe(server, kind, (e) => {
      if (!pred(e)) return;
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}
