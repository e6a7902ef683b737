// The security review's findings on TLS and readiness, replayed against a
// real mesh (meshlet run, Envoy as uid 1337, namespaces): TLS 1.2 is refused
// on mtls and tls ports unless a tls port opted in; sidecar to sidecar is TLS
// 1.3 with the hybrid post-quantum group on the wire; Envoy will not speak
// 1.2 to an upstream either; and a foreign rule inserted above meshlet's
// jumps turns /ready to 503 within 2 s.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailable, MeshLab, type Host, type Pod } from '../../src/demo/lab.js';
import { tsharkFields } from '../../src/demo/capture.js';
import { makeClients, marker, outsideServerTls, type Clients, startOrClose } from './support.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun('hardening: TLS versions and rules that stay first', labUnavailable());
const PORTS = { mtls: 8080, tls: 8443, legacy: 8444, unlisted: 9000 } as const;
/** The outside host's address (the lab numbers hosts from .100). */
const OUTSIDE_V4 = '198.18.0.100';
const UPSTREAM = { tls12: 8443, tls13: 8444 } as const;

describe.skipIf(skip)('hardening: TLS versions and rules that stay first', () => {
  let lab: MeshLab;
  let web: Pod;
  let emoji: Pod;
  let outside: Host;
  let clients: Clients;
  let serverTls: string[];

  beforeAll(async () => {
    lab = await MeshLab.create({
      pods: [
        {
          name: 'web',
          app: { ports: [8080] },
          config: {
            egress: {
              routes: [
                { name: 'emoji', listen: '127.137.0.1:8081', remote: 'emoji-svc:8080' },
                { name: 'old-server', listen: '127.137.0.9:8081', remote: `${OUTSIDE_V4}:${UPSTREAM.tls12}` },
                { name: 'new-server', listen: '127.137.0.10:8081', remote: `${OUTSIDE_V4}:${UPSTREAM.tls13}` },
              ],
            },
          },
        },
        {
          name: 'emoji',
          app: { ports: Object.values(PORTS) },
          config: {
            ingress: {
              ports: [
                { name: 'https', port: PORTS.tls, policy: 'tls' },
                { name: 'legacy', port: PORTS.legacy, policy: 'tls', allowTls12: true },
              ],
            },
          },
        },
      ],
      hosts: [{ name: 'outside' }],
    });
    await startOrClose(lab, async () => {
      web = lab.pod('web');
      emoji = lab.pod('emoji');
      outside = lab.host('outside');
      clients = await makeClients(lab);
      serverTls = await outsideServerTls(lab);
    });
  }, 120_000);

  afterAll(async () => {
    expect((await lab?.close()) ?? []).toEqual([]);
  }, 60_000);

  /** One TLS handshake with openssl s_client from the outside host; stdin closed, so it ends after the handshake. */
  async function handshake(host: string, port: number, version: '-tls1_2', withCert: boolean): Promise<{ ok: boolean; protocol?: string; out: string }> {
    const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const cert = withCert ? ['-cert', clients.mesh.cert ?? '', '-key', clients.mesh.key ?? ''] : [];
    const r = await lab.ns.exec(
      outside.ns,
      ['openssl', 's_client', '-brief', version, '-connect', target, '-servername', 'emoji-svc', '-CAfile', clients.mesh.ca, ...cert],
      { timeoutMs: 15_000 },
    );
    const out = `${r.stdout}\n${r.stderr}`;
    const protocol = /Protocol version: (\S+)/.exec(out)?.[1];
    return { ok: r.code === 0 && protocol !== undefined, ...(protocol ? { protocol } : {}), out };
  }

  it.each([
    ['IPv4', 'v4'],
    ['IPv6', 'v6'],
  ] as const)('TLS 1.2 is refused on an mtls and a tls port, and accepted on a tls port that opted in (%s)', async (_family, fam) => {
    const ip = emoji[fam];
    for (const [port, cert] of [
      [PORTS.mtls, true],
      [PORTS.tls, false],
      [PORTS.unlisted, true],
    ] as const) {
      const old = await handshake(ip, port, '-tls1_2', cert);
      expect(old.ok, `TLS 1.2 to ${port}: ${old.out}`).toBe(false);
      expect(old.out, `port ${port}`).toMatch(/protocol version|unsupported protocol|no protocols available/i);
      // The control: a TLS 1.3 client (the same certificate, or none on the tls port) gets an answer.
      const modern = await lab.http(outside, ip, port, `/tls13/${marker('c')}`, { tls: { ...(cert ? clients.mesh : clients.none), servername: 'emoji-svc' } });
      expect(modern.status, JSON.stringify(modern)).toBe(200);
      expect(modern.tls?.protocol).toBe('TLSv1.3');
    }
    const legacy = await handshake(ip, PORTS.legacy, '-tls1_2', false);
    expect(legacy, legacy.out).toMatchObject({ ok: true, protocol: 'TLSv1.2' });
  });

  it('sidecar to sidecar is TLS 1.3 with X25519MLKEM768 on the wire, both ways of the hop, and the certificates never cross in clear', async () => {
    const mark = marker('pq');
    const cap = await lab.capture(emoji);
    const r = await lab.appFetch(web, `http://127.137.0.1:8081/pq/${mark}`);
    await cap.stop();
    expect(r.status, JSON.stringify(r)).toBe(200);
    const wire = await cap.analyze(lab.ns, { tlsPorts: [PORTS.mtls], markers: [mark, 'emoji-svc', 'web-svc'] });
    expect(wire.sessions.length, JSON.stringify(wire)).toBeGreaterThanOrEqual(1);
    // ServerHello (emoji's Envoy, the server side) chose 1.3; web's Envoy (the client side) offered it.
    expect(wire.versions).toEqual(['TLS 1.3']);
    // Under 1.3 the certificates are encrypted: neither SAN appears in the raw capture.
    expect(wire.cleartext).toEqual([]);
    const groups = await lab.ns.must(undefined, tsharkFields(cap.file, ['tls.handshake.extensions_key_share_group'], [PORTS.mtls], 'tls.handshake.type == 2'), {
      timeoutMs: 30_000,
    });
    // 4588 (0x11ec) is X25519MLKEM768.
    const chosen = groups.split('\n').filter(Boolean);
    expect(chosen.length).toBeGreaterThanOrEqual(1);
    expect(
      chosen.every((g) => g === '4588' || g === '0x11ec'),
      groups,
    ).toBe(true);
  });

  it("the sidecar's client side refuses an upstream that only speaks TLS 1.2", async () => {
    const base = ['openssl', 's_server', '-www', ...serverTls];
    const old = lab.ns.spawn(outside.ns, 's_server tls1.2', [...base, '-tls1_2', '-accept', `${OUTSIDE_V4}:${UPSTREAM.tls12}`], { stderrLines: true });
    const modern = lab.ns.spawn(outside.ns, 's_server tls1.3', [...base, '-accept', `${OUTSIDE_V4}:${UPSTREAM.tls13}`], { stderrLines: true });
    await old.waitFor((l) => l.includes('ACCEPT'), 10_000, 's_server (TLS 1.2 only) accepting');
    await modern.waitFor((l) => l.includes('ACCEPT'), 10_000, 's_server accepting');
    const refused = await lab.appFetch(web, 'http://127.137.0.9:8081/');
    expect(refused.status, JSON.stringify(refused)).not.toBe(200);
    // The server saw a ClientHello it could not answer: the client offered 1.3 only.
    await old.waitFor((l) => /unsupported protocol|no protocols available|version/i.test(l), 10_000, "s_server's handshake error");
    // The control: the same route shape to a server that can do 1.3 works.
    const ok = await lab.appFetch(web, 'http://127.137.0.10:8081/');
    expect(ok.status, `${JSON.stringify(ok)}\n${modern.output()}\n${old.output()}`).toBe(200);
  });

  it('a foreign ACCEPT inserted above the jumps: plaintext reaches the app, and /ready is 503 within 2 s; a re-run of init restores both', async () => {
    expect((await lab.waitReadyResult(emoji, 5)).code).toBe(0);
    const insertedAt = Date.now();
    for (const bin of ['iptables', 'ip6tables'])
      await lab.ns.must(emoji.ns, [bin, '-w', '-t', 'mangle', '-I', 'PREROUTING', '1', '-p', 'tcp', '--dport', String(PORTS.unlisted), '-j', 'ACCEPT']);
    // Wait for the event (503), bounded by the promise: 2 s from the change.
    const poll = `
      const deadline = Number(process.argv[1]);
      for (;;) {
        const r = await fetch('http://127.0.0.1:15020/ready').catch((e) => ({ status: 0, text: async () => String(e) }));
        const body = await r.text();
        if (r.status === 503) { console.log(JSON.stringify({ status: 503, body })); break; }
        if (Date.now() > deadline) { console.log(JSON.stringify({ status: r.status, body, timedOut: true })); break; }
        await new Promise((res) => setTimeout(res, 50));
      }`;
    const out = await lab.ns.must(emoji.ns, [process.execPath, '--input-type=module', '-e', poll, String(insertedAt + 2_000)], { timeoutMs: 20_000 });
    const seen = JSON.parse(out.trim()) as { status: number; body: string; timedOut?: boolean };
    expect(seen, 'waited up to 2 s after the foreign rule for /ready to answer 503').toMatchObject({ status: 503 });
    expect(seen.body).toMatch(/not the first rules of PREROUTING/);
    // The attack the check exists for: plaintext straight to the app.
    const plain = await lab.http(outside, emoji.v4, PORTS.unlisted, `/bypass/${marker('b')}`, { timeoutMs: 3_000 });
    expect(plain.status).toBe(200);

    await lab.init(emoji);
    expect((await lab.waitReadyResult(emoji, 10)).code).toBe(0);
    const after = await lab.http(outside, emoji.v4, PORTS.unlisted, `/bypass-after/${marker('b')}`, { timeoutMs: 3_000 });
    expect(after.status).toBeUndefined();
  });
});
