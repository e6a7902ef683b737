// A rehearsal of `meshlet run`'s start, run once while the startup snapshot
// is built (src/snapshot.ts), so that the blob keeps the bytecode of what a
// start runs: V8 compiles a function on its first call, and a start from a
// blob without code compiled every function of the config check, the
// certificate checks, the snapshot build and the ADS exchange on the way to
// /ready (about a fifth of node's CPU time to /ready on a 2-CPU VM: 23 of
// 112 ms, 25 interleaved starts each).
// scripts/install-snapshot.sh builds the blob with V8's code kept and then
// drops node's own code cache for its built-ins from it (src/snapshot-blob.ts
// says why); what stays is the bytecode of the functions that ran here.
//
// The rehearsal runs the same functions a start runs, on a sample config and
// a throwaway PKI that the script writes into a fresh directory (`meshlet
// dev-pki`), with an empty environment for the config's pins. It keeps none
// of their results: the snapshot's reusable entries and the builders' memos
// are emptied after it, and it fails the build if the sample needed the YAML
// library or zod (both would then be in every start's heap, which the fast
// path exists to avoid). Its modules are loaded before the rehearsal runs,
// while the snapshot guard still refuses reads of the process's state, as
// every module in the snapshot is.
import { loadConfig } from './config/load.js';
import { checkReadCerts, readCertFiles } from './certs/load.js';
import { buildBootstrap, renderBootstrap } from './envoy/bootstrap.js';
import { snapshotFor } from './run/snapshot-for.js';
import { forgetBuilt, typeOf, type Snapshot } from './xds/snapshot.js';
import { forgetAllMemos, memoSizes } from './xds/builders/memo.js';
import { AdsServer } from './xds/server.js';
import { TYPE_URL } from './xds/protos.js';
import { decodeMessage, encodePlain } from './xds/wire.js';
import { Flag, FrameType, frame, PREFACE, settingsPayload } from './xds/h2/frames.js';
import { encodeHeaders } from './xds/h2/hpack.js';
import { createLogger } from './log.js';
const { writeFileSync } = process.getBuiltinModule('node:fs');
const { createRequire } = process.getBuiltinModule('node:module');
const net = process.getBuiltinModule('node:net');
const path = process.getBuiltinModule('node:path');

/**
 * The sample: what a typical pod runs (as bench/ row 2's config), in the
 * block YAML the fast reader takes. No DNS service (it binds sockets).
 */
export function rehearsalConfig(dir: string): string {
  return `certs:
  ca: ${dir}/certs/mesh-ca.pem
  certChain: ${dir}/certs/certChain.pem
  key: ${dir}/certs/key.pem
proxy:
  xdsSocket: ${dir}/run/xds.sock
  bootstrapPath: ${dir}/run/envoy.json
ingress:
  mode: tproxy
  default: mtls
  ports:
    - name: web
      port: 8080
      policy: tls
    - name: metrics
      port: 7890
      policy: plaintext
    - name: admin-api
      port: 8443
      policy: mtls
      allowedSans:
        - ops
egress:
  routes:
    - name: emoji
      listen: 127.1.0.1:8081
      remote: emoji-svc:8080
    - name: voting
      listen: 127.1.0.2:8081
      remote: 198.18.0.21:8080
      sni: voting-svc
      expectedSans:
        - voting-svc
    - name: db
      listen: 127.1.0.3
      remote: db-svc
  capture: true
  exclude:
    ports:
      - 443
    cidrs:
      - 198.19.0.0/16
`;
}

/** Packages (node_modules) that CommonJS has loaded in this process: the YAML library and zod come that way. */
function loadedPackages(): string[] {
  return Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes(`${path.sep}node_modules${path.sep}`));
}

/** What the rehearsal ran, for the build's log and the tests. */
export interface RehearsalReport {
  resources: number;
  /** Responses the rehearsal's ADS client got, and ACKs the server took. */
  ads: { responses: number; acks: number };
  forgotten: { built: number; memos: number };
}

const DELTA_REQUEST = 'envoy.service.discovery.v3.DeltaDiscoveryRequest';
const DELTA_RESPONSE = 'envoy.service.discovery.v3.DeltaDiscoveryResponse';
const DELTA_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';
/** The rehearsal's exchange is local and small; past this, something is wrong and the build fails. */
const ADS_REHEARSAL_MS = 10_000;

/** A gRPC message: no compression, its length, the bytes. */
function grpcMessage(bytes: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([prefix, bytes]);
}

/**
 * The ADS part of a start, over a real Unix socket in `dir` (closed again
 * before the snapshot is taken, as node requires): Envoy's side is played
 * here with meshlet's own frame and HPACK writers, as Envoy opens its Delta
 * stream (the node in the first request), subscribes to clusters, listeners
 * and the secrets, and ACKs each response by its nonce.
 */
async function rehearseAds(dir: string, snapshot: Snapshot): Promise<RehearsalReport['ads']> {
  // Logs at info, as a start does, into nothing: the formatting runs, nothing is written.
  const logger = createLogger({ level: 'info', sink: { write: () => undefined } });
  const socketPath = path.join(dir, 'run', 'xds.sock');
  const ads = new AdsServer({ socketPath, logger, snapshot });
  await ads.listen();
  let acks = 0;
  let responses = 0;
  const secrets = [...typeOf(snapshot, TYPE_URL.secret).resources.keys()];
  const socket = net.connect(socketPath);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the ADS rehearsal did not finish in ${ADS_REHEARSAL_MS} ms`)), ADS_REHEARSAL_MS);
      const done = (err?: Error): void => {
        clearTimeout(timer);
        offAck();
        if (err) reject(err);
        else resolve();
      };
      const offAck = ads.onAck(() => {
        acks += 1;
        if (acks === 3) done();
      });
      socket.once('error', done);
      const request = (req: Record<string, unknown>): Buffer => frame(FrameType.DATA, 0, 1, grpcMessage(encodePlain(DELTA_REQUEST, req)));
      let frames = Buffer.alloc(0);
      let body = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        frames = Buffer.concat([frames, chunk]);
        const out: Buffer[] = [];
        while (frames.length >= 9) {
          const length = frames.readUIntBE(0, 3);
          if (frames.length < 9 + length) break;
          const [type, flags] = [frames[3], frames[4] ?? 0];
          const payload = frames.subarray(9, 9 + length);
          frames = frames.subarray(9 + length);
          if (type === FrameType.SETTINGS && (flags & Flag.ACK) === 0) out.push(frame(FrameType.SETTINGS, Flag.ACK, 0));
          if (type !== FrameType.DATA) continue;
          body = Buffer.concat([body, payload]);
          while (body.length >= 5 && body.length >= 5 + body.readUInt32BE(1)) {
            const res = decodeMessage(DELTA_RESPONSE, body.subarray(5, 5 + body.readUInt32BE(1)));
            body = body.subarray(5 + body.readUInt32BE(1));
            responses += 1;
            out.push(request({ type_url: res['type_url'], response_nonce: res['nonce'] }));
          }
        }
        if (out.length > 0) socket.write(Buffer.concat(out));
      });
      const headers = encodeHeaders(
        [
          [':method', 'POST'],
          [':scheme', 'http'],
          [':path', DELTA_PATH],
          [':authority', 'meshlet-xds'],
          ['content-type', 'application/grpc'],
          ['te', 'trailers'],
        ],
        16_384,
      );
      socket.write(
        Buffer.concat([
          PREFACE,
          frame(FrameType.SETTINGS, 0, 0, settingsPayload([])),
          frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headers),
          request({ node: { id: 'rehearsal', cluster: 'meshlet' }, type_url: TYPE_URL.cluster }),
          request({ type_url: TYPE_URL.listener }),
          request({ type_url: TYPE_URL.secret, resource_names_subscribe: secrets }),
        ]),
      );
    });
    ads.status();
  } finally {
    socket.destroy();
    await ads.close(0);
  }
  return { responses, acks };
}

/**
 * Runs `fn` with the global setTimeout and setInterval watched, and fails if
 * a timer they made is still pending once it is done. node keeps its timer
 * lists in the heap, and a snapshot taken with one pending (an unref'd one
 * does not keep the build's event loop alive) breaks every later timer of a
 * start: the stale list, due at a time of the build's clock, sits first in
 * the queue, and a new timer due later is never scheduled. `_destroyed` is
 * how node marks a Timeout that fired or was cleared; a node without it fails
 * the build here. test/cli/cli.test.ts (wait-ready against an endpoint that
 * never answers) and test/dns/loop.test.ts fail when a start's timers do not
 * fire.
 */
async function withTimersWatched<T>(fn: () => Promise<T>): Promise<T> {
  const made: { timer: NodeJS.Timeout; at: string }[] = [];
  const { setTimeout: realTimeout, setInterval: realInterval } = globalThis;
  type TimerFn = (...args: unknown[]) => NodeJS.Timeout;
  const watch =
    (real: TimerFn): TimerFn =>
    (...args) => {
      const t = real(...args);
      // Kept referenced: node never drops the list of a cleared unreferenced timer (it expects http to make another
      // such timer soon), and a snapshot with such a list, due at a time of the build's clock, breaks every timer of
      // that duration at run time. Cleared while referenced, the list goes with its last timer.
      t.unref = () => t;
      // Where it was made, for the error: the caller's frames (the first two lines are the message and this function).
      const at = (new Error().stack ?? '')
        .split('\n')
        .slice(2, 5)
        .map((l) => l.trim())
        .join(' < ');
      made.push({ timer: t, at });
      return t;
    };
  globalThis.setTimeout = Object.assign(watch(realTimeout as unknown as TimerFn), realTimeout) as typeof setTimeout;
  globalThis.setInterval = Object.assign(watch(realInterval as unknown as TimerFn), realInterval);
  let result: T;
  try {
    result = await fn();
  } finally {
    globalThis.setTimeout = realTimeout;
    globalThis.setInterval = realInterval;
  }
  const pendingNow = (): typeof made => made.filter((m) => (m.timer as unknown as { _destroyed?: unknown })._destroyed !== true);
  // What `fn` closed may still be closing (a socket's close comes a few turns of the event loop later, and its
  // handler clears its timers): up to a second of turns for that, as the build itself would wait for it.
  const until = process.hrtime.bigint() + 1_000_000_000n;
  while (pendingNow().length > 0 && process.hrtime.bigint() < until) await new Promise((resolve) => setImmediate(resolve));
  const pending = pendingNow();
  if (pending.length > 0) {
    throw new Error(
      `the rehearsal left ${pending.length} timer(s) pending (or this node no longer marks a Timeout _destroyed), made ` +
        `${pending.map((m) => m.at).join('; ')}: a snapshot with a pending timer breaks every timer of a start; clear it when its owner closes`,
    );
  }
  // node also keeps when its timers next expect to run, and a timer cleared before it fired (as the xDS server's
  // grace timer is) leaves that at a time of the build's clock: a start would take every timer due after it for
  // one already scheduled, and never schedule it (wait-ready's request timeout never fired). A last timer that
  // fires, with no other pending, sets it back to "none".
  await new Promise((resolve) => realTimeout(resolve, 1));
  return result;
}

/**
 * Runs `fn` with node's Buffer pool off. Small Buffers (allocUnsafe, from,
 * concat, a file read) are slices of one shared pool, and the snapshot keeps
 * the current pool with whatever bytes it last held: the rehearsal's
 * certificate files, its private key (a throwaway one, made for the build and
 * removed after it, but a key all the same) and their encodings would be in
 * the blob of every image. With the pool off, each Buffer has its own memory,
 * which the snapshot drops with the Buffer. scripts/install-snapshot.sh checks
 * that the blob holds no PEM block (src/snapshot-blob.ts pemBlockIn).
 */
async function withoutBufferPool<T>(fn: () => Promise<T>): Promise<T> {
  const poolSize = Buffer.poolSize;
  Buffer.poolSize = 0;
  try {
    return await fn();
  } finally {
    Buffer.poolSize = poolSize;
  }
}

/** Runs a start's config, certificate, snapshot and ADS steps on the sample in `dir` (which holds certs/ from `meshlet dev-pki`). */
export function rehearseStart(dir: string): Promise<RehearsalReport> {
  return withoutBufferPool(() => withTimersWatched(() => rehearse(dir)));
}

async function rehearse(dir: string): Promise<RehearsalReport> {
  const before = new Set(loadedPackages());
  const configPath = path.join(dir, 'config.yaml');
  writeFileSync(configPath, rehearsalConfig(dir));
  const { config } = loadConfig(configPath, {});
  renderBootstrap(buildBootstrap(config, { nodeId: 'rehearsal', cluster: 'meshlet' }));
  const certs = checkReadCerts(readCertFiles(config.certs), config.certs);
  const snapshot = snapshotFor(config, certs);
  const added = loadedPackages().filter((f) => !before.has(f));
  if (added.length > 0)
    throw new Error(
      `the rehearsal's config left meshlet's fast path and loaded ${added.join(', ')}: ` +
        'keep it to what src/config/yaml-fast.ts and the generated validator take',
    );
  const resources = Object.values(snapshot.types).reduce((n, t) => n + t.resources.size, 0);
  const ads = await rehearseAds(dir, snapshot);
  const memos = memoSizes();
  forgetAllMemos();
  return { resources, ads, forgotten: { built: forgetBuilt(), memos } };
}
