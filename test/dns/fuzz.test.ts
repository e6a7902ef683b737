// Fuzzing with a fixed seed and a bounded count, so CI sees the same
// packets every run in a few seconds. The decision function must never throw
// on any input; each answer must be a well-formed response to that very
// query; and the live server must keep answering after thousands of random
// datagrams and TCP streams.
import dgram from 'node:dgram';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decide } from '../../src/dns/answer.js';
import { DnsService } from '../../src/dns/index.js';
import { buildNameTable } from '../../src/dns/table.js';
import { RCODE, decodeMessage } from '../../src/dns/wire.js';
import { validConfig } from '../helpers/config.js';
import type { EgressRoute } from '../../src/config/model.js';
import { createRootLogger } from '../../src/log.js';
import { freeDnsPort, query, summary } from './helpers.js';
import { prng } from '../helpers/prng.js';
import { startFakeUpstream, udpExchange, type FakeUpstream } from './fake-upstream.js';

const SEED = 0x6d657368; // "mesh"
const PURE_COUNT = 20_000;
const LIVE_UDP_COUNT = 2_000;
const LIVE_TCP_STREAMS = 100;

const routes: EgressRoute[] = [{ name: 'emoji', listenIp: '127.137.0.1', remoteHost: 'emoji-svc', expectedSans: [], names: ['emoji-svc', 'a'] }];
const table = buildNameTable(routes, ['demo.svc.cluster.local', 'b']);

const SEEDS = [
  query('emoji-svc'),
  query('emoji-svc.demo.svc.cluster.local', { edns: { udpSize: 4096 } }),
  query('a.b', { type: 28 }),
  query('other.example.test', { type: 65, edns: {} }),
  // Compressed names: two questions, the second pointing at the first.
  new Uint8Array(Buffer.from('00010100000200000000000001610162000001000103777777c00c00010001', 'hex')),
];

/** A random packet: pure noise, a mutated valid query, or a header with lying counts. */
function packet(rand: () => number): Uint8Array {
  const int = (n: number): number => Math.floor(rand() * n);
  const kind = int(4);
  if (kind === 0) return new Uint8Array(Array.from({ length: int(300) }, () => int(256)));
  const base = Uint8Array.from(SEEDS[int(SEEDS.length)] ?? SEEDS[0]!);
  if (kind === 1) {
    for (let i = 0, n = 1 + int(6); i < n; i++) base[int(base.length)] = int(256);
    base[2] = (base[2] ?? 0) & 0x7f; // mostly queries, so the deeper paths run
    return base;
  }
  if (kind === 2) {
    // Pointers aimed anywhere, including forward, at themselves and into the header.
    const at = 12 + int(Math.max(1, base.length - 13));
    base[at] = 0xc0 | int(4);
    base[at + 1] = int(64);
    return base;
  }
  // Truncated or extended, with random counts.
  const out = new Uint8Array(int(base.length + 40));
  out.set(base.subarray(0, Math.min(base.length, out.length)));
  for (let i = 4; i < 12 && i < out.length; i++) if (rand() < 0.3) out[i] = int(4);
  for (let i = base.length; i < out.length; i++) out[i] = int(256);
  if (out.length > 2) out[2] = (out[2] ?? 0) & 0x7f;
  return out;
}

describe('dns fuzz', () => {
  it(`decide() survives ${PURE_COUNT} random packets and every answer is a valid reply to its query`, () => {
    const rand = prng(SEED);
    const seen = { answer: 0, forward: 0, drop: 0, formerr: 0 };
    for (let i = 0; i < PURE_COUNT; i++) {
      const p = packet(rand);
      let d: ReturnType<typeof decide>;
      try {
        d = decide(p, { table, ttl: 5 });
      } catch (err) {
        throw new Error(`packet #${i} (${Buffer.from(p).toString('hex')}) threw: ${(err as Error).message}`);
      }
      seen[d.kind]++;
      // Plain checks, not expect(): 20,000 rounds of it would dominate the run time.
      const fail = (why: string): never => {
        throw new Error(`packet #${i} (${Buffer.from(p).toString('hex')}): ${why}`);
      };
      if (d.kind === 'answer') {
        const m = decodeMessage(d.response);
        if (!m.header.qr) fail('the answer is not a response');
        if (m.header.id !== (((p[0] ?? 0) << 8) | (p[1] ?? 0))) fail('the answer has another ID');
        if (d.response.length > 512) fail('the answer does not fit a classic UDP message');
        if (m.header.rcode === RCODE.FORMERR) seen.formerr++;
      }
      if (d.kind === 'forward' && d.query.questions.length !== 1) fail('forwarding a query without exactly one question');
    }
    // Every path was exercised, not just the first check.
    expect(seen.answer).toBeGreaterThan(500);
    expect(seen.forward).toBeGreaterThan(500);
    expect(seen.drop).toBeGreaterThan(500);
    expect(seen.formerr).toBeGreaterThan(500);
  });

  describe('the live server', () => {
    let svc: DnsService;
    let up: FakeUpstream;
    let port = 0;

    beforeAll(async () => {
      up = await startFakeUpstream();
      port = await freeDnsPort();
      const config = validConfig({
        ingress: { mode: 'disabled' },
        egress: { routes: [{ name: 'emoji', listen: '127.137.0.1', remote: 'emoji-svc', names: ['emoji-svc', 'a'] }] },
        dns: { enabled: true, address: `127.0.0.1:${port}`, upstreams: [`127.0.0.1:${up.port}`], meshletUid: 0 },
      });
      svc = await DnsService.start(
        config,
        createRootLogger('silent'),
        { readFile: () => 'search demo.svc.cluster.local b\n', uid: () => 0 },
        { upstreamTimeoutMs: 200 },
      );
    });

    afterAll(async () => {
      await svc.close();
      await up.close();
    });

    it(`keeps answering after ${LIVE_UDP_COUNT} random datagrams and ${LIVE_TCP_STREAMS} random TCP streams`, async () => {
      const rand = prng(SEED + 1);
      const sock = dgram.createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      let replies = 0;
      sock.on('message', () => replies++);
      // In batches, waiting (bounded) for the server to take each one, so the
      // kernel never drops datagrams and the count is exact.
      const settled = (): number => {
        const { queries, ...outcomes } = svc.stats;
        return Object.values(outcomes).reduce((a, b) => a + b, 0) === queries ? queries : -1;
      };
      // The server is in this process and has no per-datagram event: poll its counters, bounded, and say so on timeout.
      const until = async (n: number): Promise<void> => {
        const deadline = Date.now() + 10_000;
        while (settled() < n) {
          if (Date.now() > deadline)
            throw new Error(`timed out after 10 s waiting for the DNS server to settle ${n} datagrams (stats ${JSON.stringify(svc.stats)})`);
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      for (let i = 0; i < LIVE_UDP_COUNT; i++) {
        await new Promise<void>((r) => sock.send(packet(rand), port, '127.0.0.1', () => r()));
        if (i % 50 === 49) await until(i + 1);
      }
      for (let i = 0; i < LIVE_TCP_STREAMS; i++) {
        const bytes = Buffer.concat(Array.from({ length: 1 + Math.floor(rand() * 4) }, () => Buffer.from(packet(rand))));
        await new Promise<void>((resolve) => {
          const s = net.connect({ host: '127.0.0.1', port }, () => s.end(bytes));
          s.on('data', () => undefined);
          s.on('error', () => resolve());
          s.on('close', () => resolve());
          s.setTimeout(1000, () => s.destroy());
        });
      }
      await until(LIVE_UDP_COUNT);
      sock.close();
      expect(svc.stats.queries).toBeGreaterThanOrEqual(LIVE_UDP_COUNT);
      expect(settled()).toBe(svc.stats.queries);
      expect(replies).toBeGreaterThan(LIVE_UDP_COUNT / 2);
      const ok = summary((await udpExchange('127.0.0.1', port, query('emoji-svc.b', { id: 4711 })))!);
      expect(ok).toMatchObject({ id: 4711, rcode: 0, answers: [{ data: '127.137.0.1' }] });
      const fwd = summary((await udpExchange('127.0.0.1', port, query('x.example.test', { id: 4712 })))!);
      expect(fwd).toMatchObject({ id: 4712, answers: [{ data: '198.18.9.9' }] });
    });
  });
});
