// meshlet's DNS server in process, on loopback, against a scripted upstream:
// local answers and forwarding over UDP and TCP (pipelined and split),
// truncation handed over to TCP, failover, spoofed replies, SERVFAIL, the
// uid guard, limits, and reloads.
import dgram from 'node:dgram';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { validConfig } from '../helpers/config.js';
import type { MeshConfig } from '../../src/config/model.js';
import { DnsService, chooseUpstreams, uidProblem, type DnsDeps } from '../../src/dns/index.js';
import { FrameReader, frame } from '../../src/dns/frame.js';
import { DEFAULT_LIMITS, DnsListeners } from '../../src/dns/server.js';
import { parseResolvConf } from '../../src/dns/resolv.js';
import { RCODE, TYPE, decodeMessage } from '../../src/dns/wire.js';
import { answersQuery } from '../../src/dns/forward.js';
import { createRootLogger } from '../../src/log.js';
import { startFakeUpstream, tcpExchange, udpExchange, type FakeUpstream } from './fake-upstream.js';
import { freeDnsPort, pointerChain, query, summary } from './helpers.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const log = createRootLogger('silent');
const cleanups = cleanupAfterEach();

const freePort = freeDnsPort;

function configFor(port: number, upstreams: string[], extra: Record<string, unknown> = {}, names = ['emoji-svc']): MeshConfig {
  return validConfig({
    ingress: { mode: 'disabled' },
    egress: { routes: [{ name: 'emoji', listen: '127.137.0.1', remote: 'emoji-svc', names }] },
    // These tests run as root, playing a meshlet that runs as root.
    dns: { enabled: true, address: `127.0.0.1:${port}`, ttl: 7, upstreams, meshletUid: 0, ...extra },
  });
}

const deps = (resolv = 'search demo.svc.cluster.local\nnameserver 198.18.0.53\noptions ndots:5\n', uid = 0): DnsDeps => ({
  readFile: () => resolv,
  uid: () => uid,
});

async function start(
  upstreams: FakeUpstream[] | string[],
  extra: Record<string, unknown> = {},
  opts = {},
): Promise<{ svc: DnsService; port: number; config: MeshConfig }> {
  const port = await freePort();
  const list = upstreams.map((u) => (typeof u === 'string' ? u : `127.0.0.1:${u.port}`));
  const config = configFor(port, list, extra);
  const svc = await DnsService.start(config, log, deps(), { upstreamTimeoutMs: 300, ...opts });
  cleanups.push(() => svc.close());
  return { svc, port, config };
}

async function fake(): Promise<FakeUpstream> {
  const f = await startFakeUpstream();
  cleanups.push(() => f.close());
  return f;
}

describe('dns server', () => {
  it('answers route names itself over UDP, IPv4 and IPv6, search-expanded or short', async () => {
    const up = await fake();
    const { svc, port } = await start([up]);
    for (const [host, name] of [
      ['127.0.0.1', 'emoji-svc.demo.svc.cluster.local'],
      ['::1', 'emoji-svc'],
    ] as const) {
      const r = summary((await udpExchange(host, port, query(name, { id: 99 })))!);
      expect(r).toMatchObject({ id: 99, rcode: RCODE.NOERROR, aa: true, answers: [{ name, type: TYPE.A, ttl: 7, data: '127.137.0.1' }] });
    }
    const aaaa = summary((await udpExchange('127.0.0.1', port, query('emoji-svc', { type: TYPE.AAAA })))!);
    expect(aaaa).toMatchObject({ rcode: RCODE.NOERROR, answers: [] });
    expect(up.seen).toEqual([]);
    expect(svc.stats).toMatchObject({ queries: 3, answered: 3, forwarded: 0 });
    expect(svc.addresses()).toEqual([`udp 127.0.0.1:${port}`, `udp [::1]:${port}`, `tcp 127.0.0.1:${port}`, `tcp [::1]:${port}`]);
  });

  it('forwards every other name and relays the reply byte for byte', async () => {
    const up = await fake();
    const { svc, port } = await start([up]);
    const reply = await udpExchange('127.0.0.1', port, query('other-svc.demo.svc.cluster.local', { id: 5, edns: {} }));
    expect(Buffer.from(reply!).equals(Buffer.from(up.lastReply!))).toBe(true);
    expect(summary(reply!)).toMatchObject({ id: 5, answers: [{ data: '198.18.9.9' }] });
    expect(up.seen).toEqual(['udp other-svc.demo.svc.cluster.local']);
    expect(svc.stats.forwarded).toBe(1);
  });

  it('serves TCP: pipelined queries in one write, and a query split across writes', async () => {
    const up = await fake();
    const { port } = await start([up]);
    const a = frame(query('emoji-svc', { id: 1 }));
    const b = frame(query('other-svc', { id: 2 }));
    const both = Buffer.concat([a, b]);
    const replies = (await tcpExchange('127.0.0.1', port, [both.subarray(0, 5), both.subarray(5, 40), both.subarray(40)], 2)).map(summary);
    expect(replies.map((r) => [r.id, r.answers[0]?.data]).sort()).toEqual([
      [1, '127.137.0.1'],
      [2, '198.18.9.9'],
    ]);
    expect(up.seen).toEqual(['tcp other-svc']);
  });

  it('a truncated UDP answer reaches the client, which then gets the whole answer over TCP', async () => {
    const up = await fake();
    up.behave = (_n, t) => (t === 'udp' ? 'truncate' : 'many');
    const { port } = await start([up]);
    const udp = summary((await udpExchange('127.0.0.1', port, query('big.example.test')))!);
    expect(udp).toMatchObject({ tc: true, answers: [] });
    const [tcp] = await tcpExchange('127.0.0.1', port, [frame(query('big.example.test'))], 1);
    expect(tcp!.length).toBeGreaterThan(512);
    expect(summary(tcp!).answers).toHaveLength(100);
  });

  it('tries the next resolver when one refuses or stays silent, and ignores a reply with the wrong ID', async () => {
    const silent = await fake();
    silent.behave = () => 'silent';
    const good = await fake();
    good.behave = () => 'wrong-id-first';
    const dead = await freePort();
    const { svc, port } = await start([`127.0.0.1:${dead}`, `127.0.0.1:${silent.port}`, `127.0.0.1:${good.port}`]);
    const r = summary((await udpExchange('127.0.0.1', port, query('other-svc', { id: 77 })))!);
    expect(r).toMatchObject({ id: 77, answers: [{ data: '198.18.9.9' }] });
    expect(silent.seen).toEqual(['udp other-svc']);
    // Over TCP too: the dead one refuses the connection.
    const [t] = await tcpExchange('127.0.0.1', port, [frame(query('other-svc', { id: 78 }))], 1);
    expect(summary(t!)).toMatchObject({ id: 78, answers: [{ data: '198.18.9.9' }] });
    expect(svc.stats.errors).toBe(0);
  });

  it('answers SERVFAIL when no resolver answers in time', async () => {
    const silent = await fake();
    silent.behave = () => 'silent';
    const { svc, port } = await start([silent]);
    const r = summary((await udpExchange('127.0.0.1', port, query('other-svc', { id: 3, edns: {} })))!);
    expect(r).toMatchObject({ id: 3, rcode: RCODE.SERVFAIL, question: 'other-svc', opt: { udpSize: 1232 } });
    expect(svc.stats.errors).toBe(1);
  });

  it('with more queries in flight than allowed, the rest get SERVFAIL at once', async () => {
    const silent = await fake();
    silent.behave = () => 'silent';
    const { port } = await start([silent], {}, { maxInFlight: 2 });
    const replies = await Promise.all([1, 2, 3, 4].map((id) => udpExchange('127.0.0.1', port, query(`q${id}.test`, { id }), 2000)));
    const rcodes = replies.map((r) => summary(r!).rcode);
    expect(rcodes.filter((c) => c === RCODE.SERVFAIL)).toHaveLength(4);
    expect(silent.seen.length).toBe(2);
  });

  it('reloads names, TTL and resolvers without rebinding', async () => {
    const up1 = await fake();
    const up2 = await fake();
    const { svc, port } = await start([up1]);
    const next = configFor(port, [`127.0.0.1:${up2.port}`], { ttl: 1 }, ['voting-svc']);
    svc.update(next);
    expect(summary((await udpExchange('127.0.0.1', port, query('voting-svc')))!).answers).toEqual([
      { name: 'voting-svc', type: TYPE.A, ttl: 1, data: '127.137.0.1' },
    ]);
    expect(summary((await udpExchange('127.0.0.1', port, query('emoji-svc')))!).answers[0]?.data).toBe('198.18.9.9');
    expect(up2.seen).toEqual(['udp emoji-svc']);
    expect(svc.names().map(([n]) => n)).toEqual([
      'voting-svc',
      'voting-svc.demo.svc.cluster.local',
      'voting-svc.demo.svc.cluster.local.demo.svc.cluster.local',
    ]);
  });

  it('answers garbage with FORMERR or drops it, and keeps serving', async () => {
    const up = await fake();
    const { svc, port } = await start([up]);
    const bad = new Uint8Array(Buffer.from('beef0100000100000000000ac00c00010001', 'hex'));
    expect(summary((await udpExchange('127.0.0.1', port, bad))!)).toMatchObject({ id: 0xbeef, rcode: RCODE.FORMERR });
    // Three bytes are dropped: from one socket, junk then a query; the server takes them in order, so the first reply is the query's.
    const firstReply = await new Promise<Uint8Array>((resolve, reject) => {
      const s = dgram.createSocket('udp4');
      const timer = setTimeout(() => {
        s.close();
        reject(new Error('no reply to the query sent after the junk datagram within 5000 ms'));
      }, 5_000);
      s.once('message', (m) => {
        clearTimeout(timer);
        s.close();
        resolve(new Uint8Array(m));
      });
      s.send(new Uint8Array([1, 2, 3]), port, '127.0.0.1', () => s.send(query('emoji-svc', { id: 0x4242 }), port, '127.0.0.1'));
    });
    expect(summary(firstReply)).toMatchObject({ id: 0x4242 });
    const [t] = await tcpExchange('127.0.0.1', port, [frame(bad)], 1);
    expect(summary(t!).rcode).toBe(RCODE.FORMERR);
    expect(summary((await udpExchange('127.0.0.1', port, query('emoji-svc')))!).answers).toHaveLength(1);
    expect(svc.stats).toMatchObject({ dropped: 1, errors: 2, answered: 2 });
  });

  it('closes a TCP client that pipelines more than allowed, or idles', async () => {
    const up = await fake();
    const { port } = await start([up], {}, { limits: { maxConnections: 4, idleMs: 200, maxPipelined: 2 } });
    const many = Buffer.concat([1, 2, 3, 4].map((id) => frame(query('emoji-svc', { id }))));
    const closed = await new Promise<number>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => s.write(many));
      let bytes = 0;
      s.on('data', (d: Buffer) => (bytes += d.length));
      // Cut off with a reset: nothing of what it sent or was sent stays in the kernel.
      s.on('error', () => undefined);
      s.on('close', () => resolve(bytes));
    });
    expect(closed).toBeLessThan(many.length);
    // An idle client is closed by the server: it is served first (so the close is not a refusal), then left idle until the server hangs up.
    const answered = await new Promise<number>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => s.write(frame(query('emoji-svc', { id: 9 }))));
      let bytes = 0;
      const timer = setTimeout(() => reject(new Error('the server did not close the idle connection within 10 s')), 10_000);
      s.on('data', (d: Buffer) => (bytes += d.length));
      // 'end': the server sent FIN.
      s.on('end', () => {
        clearTimeout(timer);
        resolve(bytes);
      });
      s.on('error', reject);
    });
    expect(answered).toBeGreaterThan(12);
  });

  it('closes a TCP client that trickles one message byte by byte: the deadline is per message, not per byte', async () => {
    const up = await fake();
    const { port } = await start([up], {}, { limits: { maxConnections: 8, idleMs: 10_000, messageMs: 300, maxPipelined: 4 } });
    const msg = frame(query('emoji-svc', { id: 7 }));
    // One byte every 50 ms: each byte would reset a per-byte timeout; the whole message would take msg.length * 50 ms.
    const sent = await new Promise<number>((resolve) => {
      let i = 0;
      const s = net.connect({ host: '127.0.0.1', port });
      const tick = setInterval(() => {
        if (i < msg.length && !s.destroyed) s.write(msg.subarray(i, ++i));
      }, 50);
      s.on('error', () => undefined);
      s.on('close', () => {
        clearInterval(tick);
        resolve(i);
      });
    });
    expect(sent).toBeLessThan(msg.length);
  });

  it('keeps answering TCP clients while slow clients hold every connection slot', async () => {
    const up = await fake();
    const max = 16;
    const { port } = await start([up], {}, { limits: { maxConnections: max, idleMs: 10_000, messageMs: 5_000, maxPipelined: 4 } });
    // Slow clients: each sends the first byte of a length prefix and then nothing, holding its connection.
    const slow: net.Socket[] = [];
    cleanups.push(() => Promise.resolve(slow.forEach((s) => s.destroy())));
    await Promise.all(
      Array.from(
        { length: max * 2 },
        () =>
          new Promise<void>((resolve) => {
            const s = net.connect({ host: '127.0.0.1', port }, () => s.write(Buffer.from([0]), () => resolve()));
            s.on('error', () => resolve());
            s.on('close', () => resolve());
            slow.push(s);
          }),
      ),
    );
    for (let i = 0; i < 5; i++) {
      const [reply] = await tcpExchange('127.0.0.1', port, [frame(query('emoji-svc', { id: 100 + i }))], 1);
      expect(summary(reply!)).toMatchObject({ id: 100 + i, rcode: RCODE.NOERROR });
    }
  });

  it('gives a TCP connection 128 KiB of answers, then hangs up: FIN after the last one, RST if the client stays', async () => {
    // 60 KB answers, as a large RRset from a resolver would be. Unread answers wait in the kernel's buffers, megabytes
    // per socket, which is why a connection's share is bounded at all.
    const big = new Uint8Array(60_000);
    const listeners = new DnsListeners(() => Promise.resolve(big), log, { ...DEFAULT_LIMITS, messageMs: 300 });
    const port = await freePort();
    await listeners.listen({ ip: '127.0.0.1', port });
    cleanups.push(() => listeners.close());
    // Five queries in one write; the third answer passes 128 KiB, so it is the last, and FIN follows it. The client
    // keeps its own side open (allowHalfOpen), as one that never closes would: 300 ms later it is reset.
    const events: string[] = [];
    const answers = await new Promise<number>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () =>
        s.write(Buffer.concat([1, 2, 3, 4, 5].map((id) => frame(query('big.test', { id }))))),
      );
      cleanups.push(() => Promise.resolve(void s.destroy()));
      const reader = new FrameReader();
      let got = 0;
      s.on('data', (d: Buffer) => (got += reader.push(d).length));
      s.on('end', () => {
        events.push(`end after ${got}`);
        // More than the kernel's buffers take while the server reads nothing: the write waits, and so it sees the RST.
        s.write(Buffer.alloc(16 * 1024 * 1024));
      });
      s.on('error', (e: NodeJS.ErrnoException) => events.push(e.code ?? e.message));
      s.on('close', () => resolve(got));
    });
    expect(answers).toBe(3);
    // The reset shows on the client's pending write as ECONNRESET, or as EPIPE once the socket is already closed.
    expect(events).toHaveLength(2);
    expect(events[0]).toBe('end after 3');
    expect(['ECONNRESET', 'EPIPE']).toContain(events[1]);
    // A new connection is served as usual.
    const [again] = await tcpExchange('127.0.0.1', port, [frame(query('big.test', { id: 6 }))], 1);
    expect(again?.length).toBe(big.length);
  });

  it('takes a query for one of its own forwards only from the address and port the forward left from, not from that port elsewhere', async () => {
    const up = await fake();
    up.behave = (name) => (name.startsWith('slow') ? 'silent' : 'answer');
    const { svc, port } = await start([up], {}, { upstreamTimeoutMs: 1_500 });
    const forwarded = (transport: 'udp' | 'tcp'): Promise<number> =>
      new Promise((resolve) => (up.onQuery = (from) => from.transport === transport && resolve(from.port)));
    // UDP: meshlet's forwarding socket is IPv4; the app, in the same network namespace, binds its port on IPv6 loopback.
    let from = forwarded('udp');
    const slowUdp = udpExchange('127.0.0.1', port, query('slow-udp.test', { id: 1 }), 5_000);
    const udpPort = await from;
    const spoof6 = dgram.createSocket('udp6');
    cleanups.push(() => new Promise<void>((r) => spoof6.close(() => r())));
    await new Promise<void>((r) => spoof6.bind(udpPort, '::1', () => r()));
    const reply6 = new Promise<Uint8Array>((resolve) => spoof6.once('message', (m) => resolve(new Uint8Array(m))));
    spoof6.send(query('emoji-svc', { id: 2 }), port, '::1');
    expect(summary(await reply6)).toMatchObject({ id: 2, rcode: RCODE.NOERROR, answers: [{ data: '127.137.0.1' }] });
    // TCP: the forwarding connection leaves from 127.0.0.1; the app connects from another loopback address, same port.
    from = forwarded('tcp');
    const slowTcp = tcpExchange('127.0.0.1', port, [frame(query('slow-tcp.test', { id: 3 }))], 1, 5_000);
    const tcpPort = await from;
    const [replyTcp] = await new Promise<Uint8Array[]>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2', localPort: tcpPort }, () => s.write(frame(query('emoji-svc', { id: 4 }))));
      const reader = new FrameReader();
      s.on('data', (d: Buffer) => {
        const got = reader.push(d);
        if (got.length > 0) {
          s.destroy();
          resolve(got);
        }
      });
      s.on('error', reject);
    });
    expect(summary(replyTcp!)).toMatchObject({ id: 4, rcode: RCODE.NOERROR });
    expect(svc.stats.loops).toBe(0);
    // The slow queries end as any unanswered forward does.
    expect(summary((await slowUdp)!).rcode).toBe(RCODE.SERVFAIL);
    expect(summary((await slowTcp)[0]!).rcode).toBe(RCODE.SERVFAIL);
  });

  it('refuses to start on a port that is taken', async () => {
    const port = await freePort();
    const squat = dgram.createSocket('udp4');
    await new Promise<void>((r) => squat.bind(port, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => squat.close(() => r())));
    await expect(DnsService.start(configFor(port, ['198.18.0.53']), log, deps())).rejects.toThrow(/EADDRINUSE/);
  });
});

describe('replies from a resolver', () => {
  const q = decodeMessage(query('slow.test', { id: 0x1234 }));
  const asReply = (bytes: Uint8Array): Uint8Array => {
    const b = Buffer.from(bytes);
    b[2] = (b[2] ?? 0) | 0x80;
    return new Uint8Array(b);
  };

  /** The reply's bytes, and the highest offset answersQuery read of them. */
  const watched = (bytes: Uint8Array): { reply: Uint8Array; furthest: () => number } => {
    let furthest = -1;
    const reply = new Proxy(bytes, {
      get(target, key) {
        if (typeof key === 'string' && /^\d+$/.test(key)) furthest = Math.max(furthest, Number(key));
        const v = Reflect.get(target, key, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    return { reply, furthest: () => furthest };
  };

  it('checks the ID, QR and question count from the header before it reads any name', () => {
    // The 64 KB pointer-chain message (test/dns/helpers.ts) as a reply: its ID or its question count is wrong, so
    // nothing past the 12-byte header is read (an earlier check decoded all of it, for seconds, before comparing the ID).
    const wrongId = watched(pointerChain(8000, 4000, { id: 0x4321, qr: true }));
    expect(answersQuery(wrongId.reply, q)).toBe(false);
    expect(wrongId.furthest()).toBeLessThan(12);
    const bytes = Buffer.from(pointerChain(8000, 4000, { id: 0x1234, qr: true }));
    bytes.writeUInt16BE(2, 4);
    const twoQuestions = watched(new Uint8Array(bytes));
    expect(answersQuery(twoQuestions.reply, q)).toBe(false);
    expect(twoQuestions.furthest()).toBeLessThan(12);
    // The right ID and one question: the question is read (to offset 16 here), the 64 KB of records are not.
    const one = watched(pointerChain(8000, 4000, { id: 0x1234, qr: true }));
    expect(answersQuery(one.reply, q)).toBe(false);
    expect(one.furthest()).toBeLessThan(17);
    expect(answersQuery(asReply(query('slow.test', { id: 0x1234 })).subarray(0, 11), q)).toBe(false);
    expect(answersQuery(query('slow.test', { id: 0x1234 }), q)).toBe(false);
  });

  it('reads the question only: the records are relayed to the app as they came, unread', () => {
    const answer = asReply(query('slow.test', { id: 0x1234 }));
    expect(answersQuery(answer, q)).toBe(true);
    expect(answersQuery(asReply(query('other.test', { id: 0x1234 })), q)).toBe(false);
    // One answer promised, none there: the app's resolver judges the records, as it would the resolver's own.
    const promised = Buffer.from(answer);
    promised.writeUInt16BE(1, 6);
    expect(answersQuery(new Uint8Array(promised), q)).toBe(true);
  });
});

describe('dns guards', () => {
  const config = configFor(15053, []);

  it('refuses to run as a uid the rules do not exempt, naming the fix', async () => {
    expect(uidProblem(config, 0)).toBeUndefined();
    expect(uidProblem(config, 1337)).toBeUndefined();
    expect(uidProblem(config, undefined)).toBeUndefined();
    expect(uidProblem(config, 1000)).toMatch(/uid 1000.*dns.meshletUid: 1000.*meshlet init/);
    // The default: meshlet runs as the proxy uid, and root is not exempt.
    expect(uidProblem(configFor(15053, [], { meshletUid: undefined }), 0)).toMatch(/runs as uid 0, but only uid 1337 \(proxy.uid and dns.meshletUid\) bypass/);
    await expect(DnsService.start(config, log, deps(undefined, 1000))).rejects.toThrow(/bypass the DNS redirection/);
  });

  it('never forwards to itself: its own address on either family is dropped from the resolvers', () => {
    const dns = config.dns!;
    const resolv = parseResolvConf('nameserver 127.0.0.1\nnameserver 198.18.0.53\n');
    expect(chooseUpstreams({ ...dns, address: { ip: '127.0.0.1', port: 53 } }, resolv)).toEqual({
      upstreams: [{ ip: '198.18.0.53', port: 53 }],
      dropped: [{ ip: '127.0.0.1', port: 53 }],
    });
    expect(chooseUpstreams({ ...dns, address: { ip: '127.0.0.53', port: 53 }, upstreams: [{ ip: '::1', port: 53 }] }, resolv).upstreams).toEqual([]);
    expect(chooseUpstreams(dns, resolv).upstreams).toHaveLength(2);
  });

  it('reads resolv.conf once at start; a missing file means the local machine, with a warning', async () => {
    const port = await freePort();
    const missing: DnsDeps = {
      readFile: () => {
        throw new Error('ENOENT');
      },
      uid: () => 0,
    };
    const svc = await DnsService.start(configFor(port, []), log, missing);
    cleanups.push(() => svc.close());
    expect(svc.resolvConf).toEqual({
      nameservers: [
        { ip: '127.0.0.1', port: 53 },
        { ip: '::1', port: 53 },
      ],
      search: [],
      ndots: 1,
    });
  });
});
