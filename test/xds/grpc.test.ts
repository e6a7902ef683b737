// The ADS server's own gRPC layer against a hostile or sloppy client on the
// socket (anything running as the proxy uid can connect): raw HTTP/2 requests
// that break the protocol must end that stream with a gRPC status, never
// buffer unbounded input, and never take the server down for Envoy.
import http2 from 'node:http2';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { codec } from '../../src/xds/reflect.js';
import { MAX_RECEIVE_BYTES, Status } from '../../src/xds/grpc.js';
import { TYPE } from '../../src/xds/protos.js';
import { adsHarness, cluster, CDS } from './ads-fixtures.js';

const SOTW = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

interface Outcome {
  status: number | undefined;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  data: Buffer;
}

/** One request on a fresh HTTP/2 connection to the socket; resolves when the server ends the stream. */
function request(socketPath: string, headers: http2.OutgoingHttpHeaders, body: Buffer | undefined, endRequest = true): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const session = http2.connect('http://localhost', { createConnection: () => net.connect(socketPath) });
    session.on('error', reject);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error('timed out waiting for the server to end the stream'));
    }, 5_000);
    const req = session.request({ ':method': 'POST', ':path': SOTW, 'content-type': 'application/grpc', te: 'trailers', ...headers }, { endStream: false });
    const out: Outcome = { status: undefined, headers: {}, trailers: {}, data: Buffer.alloc(0) };
    req.on('response', (h) => {
      out.status = h[':status'];
      out.headers = h;
    });
    req.on('trailers', (t) => (out.trailers = t));
    req.on('data', (d: Buffer) => (out.data = Buffer.concat([out.data, d])));
    req.on('error', () => undefined);
    req.on('close', () => {
      clearTimeout(timer);
      session.close();
      resolve(out);
    });
    if (body) req.write(body);
    if (endRequest) req.end();
  });
}

function frame(message: Buffer, compressed = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = compressed;
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

const grpcStatus = (o: Outcome): number => Number(o.trailers['grpc-status'] ?? o.headers['grpc-status']);

describe('gRPC layer of the ADS server', () => {
  const h = adsHarness();
  const discovery = codec<Record<string, unknown>>(TYPE.discoveryRequest);

  it('answers a well-formed SotW request split across many tiny writes', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const msg = frame(discovery.serialize({ node: { id: 'raw' }, type_url: CDS }));
    const session = http2.connect('http://localhost', { createConnection: () => net.connect(h.socketPath) });
    try {
      const req = session.request({ ':method': 'POST', ':path': SOTW, 'content-type': 'application/grpc', te: 'trailers' });
      const got = new Promise<Buffer>((resolve, reject) => {
        let data = Buffer.alloc(0);
        req.on('data', (d: Buffer) => {
          data = Buffer.concat([data, d]);
          if (data.length >= 5 && data.length >= 5 + data.readUInt32BE(1)) resolve(data);
        });
        req.on('error', reject);
        setTimeout(() => reject(new Error('no response to the CDS request within 5 s')), 5_000);
      });
      for (const b of msg) req.write(Buffer.from([b]));
      const data = await got;
      const res = codec<{ type_url: string; resources: unknown[] }>(TYPE.discoveryResponse).deserialize(data.subarray(5));
      expect(res.type_url).toBe(CDS);
      expect(res.resources).toHaveLength(1);
    } finally {
      session.destroy();
    }
  });

  it('refuses an unknown method, a GET and a non-gRPC content type', async () => {
    await h.start();
    const unknown = await request(h.socketPath, { ':path': '/envoy.service.discovery.v3.AggregatedDiscoveryService/Nope' }, undefined);
    expect(grpcStatus(unknown)).toBe(Status.UNIMPLEMENTED);
    expect((await request(h.socketPath, { ':method': 'GET' }, undefined)).status).toBe(405);
    expect((await request(h.socketPath, { 'content-type': 'application/json' }, undefined)).status).toBe(415);
    expect(grpcStatus(await request(h.socketPath, { 'grpc-encoding': 'gzip' }, undefined))).toBe(Status.UNIMPLEMENTED);
  });

  it('ends a stream that sends a compressed message, an oversized length or bytes that are not a DiscoveryRequest', async () => {
    await h.start({ clusters: [cluster('c1')] });
    const compressed = await request(h.socketPath, {}, frame(Buffer.from([1, 2, 3]), 1), false);
    expect(grpcStatus(compressed)).toBe(Status.UNIMPLEMENTED);
    // Only the 5-byte prefix is sent: the server must refuse on the length alone, not wait to buffer 4 GiB.
    const huge = Buffer.alloc(5);
    huge.writeUInt32BE(0xffffffff, 1);
    const oversized = await request(h.socketPath, {}, huge, false);
    expect(grpcStatus(oversized)).toBe(Status.RESOURCE_EXHAUSTED);
    expect(decodeURIComponent(String(oversized.trailers['grpc-message']))).toContain(String(MAX_RECEIVE_BYTES));
    const garbage = await request(h.socketPath, {}, frame(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])), false);
    expect(grpcStatus(garbage)).toBe(Status.INTERNAL);
    // And Envoy's kind of client is still served.
    const c = h.connect().sotw('after');
    c.request(CDS);
    expect((await c.next()).resources).toHaveLength(1);
  });

  it('survives a connection that is not HTTP/2 at all', async () => {
    await h.start({ clusters: [cluster('c1')] });
    await new Promise<void>((resolve) => {
      const s = net.connect(h.socketPath, () => s.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      s.on('close', () => resolve());
      s.on('error', () => undefined);
      s.resume();
    });
    const c = h.connect().sotw('after');
    c.request(CDS);
    expect((await c.next()).resources).toHaveLength(1);
  });

  it('ends the call with status OK when the client half-closes', async () => {
    await h.start();
    const done = await request(h.socketPath, {}, undefined, true);
    expect(done.status).toBe(200);
    expect(grpcStatus(done)).toBe(Status.OK);
  });
});
