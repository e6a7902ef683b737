// Shared by the ads-*.test.ts files: tiny real resources, a server on a fresh
// socket per test, and teardown in afterEach.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { TYPE_URL, type JsonObject } from '../../src/xds/protos.js';
import { createRootLogger } from '../../src/log.js';
import { AdsServer, type AdsServerOptions } from '../../src/xds/server.js';
import { buildSnapshot, type SnapshotInput } from '../../src/xds/snapshot.js';
import { AdsTestClient } from '../helpers/xds-client.js';

export const LDS = TYPE_URL.listener;
export const CDS = TYPE_URL.cluster;
export const SDS = TYPE_URL.secret;

export const SHORT: Record<string, string> = { [LDS]: 'lds', [CDS]: 'cds', [SDS]: 'sds' };

export function cluster(name: string, connectTimeout = '1s'): JsonObject {
  return { '@type': CDS, name, type: 'STATIC', connect_timeout: connectTimeout };
}

export function secret(name: string, ca = 'CA-PEM'): JsonObject {
  return { '@type': SDS, name, validation_context: { trusted_ca: { inline_string: ca } } };
}

export function listener(name: string, port: number): JsonObject {
  return { '@type': LDS, name, address: { socket_address: { address: '127.0.0.1', port_value: port } } };
}

export const snap = (input: SnapshotInput) => buildSnapshot(input);

export interface Harness {
  /** Starts a server on a socket in a fresh temp dir (in a subdirectory that does not exist yet). */
  start(input?: SnapshotInput, opts?: Partial<AdsServerOptions>): Promise<AdsServer>;
  connect(): AdsTestClient;
  readonly server: AdsServer;
  readonly socketPath: string;
  readonly dir: string;
}

/** Call at the top of a describe block; everything it creates is torn down after each test. */
export function adsHarness(): Harness {
  let server: AdsServer | undefined;
  let socketPath = '';
  let dir = '';
  let clients: AdsTestClient[] = [];
  afterEach(async () => {
    for (const c of clients) c.close();
    clients = [];
    await server?.close();
    server = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = '';
  });
  return {
    async start(input = {}, opts = {}) {
      dir = await mkdtemp(path.join(os.tmpdir(), 'meshlet-ads-'));
      socketPath = path.join(dir, 'run', 'xds.sock');
      server = new AdsServer({ socketPath, logger: createRootLogger('silent'), snapshot: buildSnapshot(input), ...opts });
      await server.listen();
      return server;
    },
    connect() {
      const c = new AdsTestClient(socketPath);
      clients.push(c);
      return c;
    },
    get server() {
      if (!server) throw new Error('call start() first');
      return server;
    },
    get socketPath() {
      return socketPath;
    },
    get dir() {
      return dir;
    },
  };
}

/** Records the server's events in order, as "response:cds", "ack:cds", ... */
export function recordEvents(server: AdsServer): string[] {
  const log: string[] = [];
  server.onResponse((e) => log.push(`response:${SHORT[e.typeUrl] ?? e.typeUrl}`));
  server.onAck((e) => log.push(`ack:${SHORT[e.typeUrl] ?? e.typeUrl}`));
  server.onNack((e) => log.push(`nack:${SHORT[e.typeUrl] ?? e.typeUrl}`));
  return log;
}
