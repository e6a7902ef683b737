// End to end, in network namespaces: three meshed pods (each an app,
// `meshlet init`, `meshlet run` and a real Envoy as uid 1337) and two plain
// hosts on one bridge. The demo's scenarios 1-7 share this mesh; each
// scenario is its own test. See mesh-spec.ts for the topology.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailable, MeshLab, PROXY, type Pod, type Host } from '../../src/demo/lab.js';
import { ADDR, EMOJI_PORTS, MESH, ROUTE, VOTING_PORTS } from './mesh-spec.js';
import { bytesSeen, expectNoAnswer, makeClients, marker, requestLogged, type Clients, startOrClose } from './support.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun('end-to-end mesh in network namespaces', labUnavailable());
const FAMILIES = [
  ['IPv4', 'v4'],
  ['IPv6', 'v6'],
] as const;
const bracket = (ip: string): string => (ip.includes(':') ? `[${ip}]` : ip);

describe.skipIf(skip)('end-to-end mesh in network namespaces', () => {
  let lab: MeshLab;
  let web: Pod;
  let emoji: Pod;
  let voting: Pod;
  let outside: Host;
  let dnsHost: Host;
  let clients: Clients;

  beforeAll(async () => {
    lab = await MeshLab.create(MESH);
    await startOrClose(lab);
    web = lab.pod('web');
    emoji = lab.pod('emoji');
    voting = lab.pod('voting');
    outside = lab.host('outside');
    dnsHost = lab.host('dns');
    clients = await makeClients(lab);
  }, 90_000);

  afterAll(async () => {
    const errors = await lab?.close();
    expect(errors ?? []).toEqual([]);
  }, 60_000);

  /** A mesh client's request to emoji's mtls port, as the barrier after refused attempts. */
  async function meshedRequest(ip: string, path: string): Promise<void> {
    const r = await lab.http(outside, ip, EMOJI_PORTS.mtls, path, { tls: { ...clients.mesh, servername: 'emoji-svc' } });
    expect(r.status, JSON.stringify(r)).toBe(200);
    await requestLogged(emoji.app!, path);
  }

  describe.each(FAMILIES)('1/7. ingress mTLS by default (%s)', (family, fam) => {
    it(`app A calls app B through an egress route over ${family}; the link carries TLS, never the payload`, async () => {
      const mark = marker('s1');
      const control = marker('s1-clear-control');
      const cap = await lab.capture(emoji);
      const route = fam === 'v4' ? ROUTE.emoji : ROUTE.emojiV6;
      const r = await lab.appFetch(web, `http://${route}/hello/${mark}`);
      // Positive control in the same capture: a plaintext port's payload is visible.
      const plain = await lab.http(outside, emoji[fam], EMOJI_PORTS.plaintext, `/metrics/${control}`);
      await cap.stop();
      expect(r.ok, JSON.stringify(r)).toBe(true);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body ?? '{}')).toEqual({
        service: 'emoji',
        port: 8080,
        method: 'GET',
        path: `/hello/${mark}`,
        peer: fam === 'v4' ? '127.0.0.6' : '::6',
      });
      expect(plain.status).toBe(200);

      const wire = await cap.analyze(lab.ns, { tlsPorts: [8080], markers: [mark, control] });
      const flow = new RegExp(`^${bracket(web[fam]).replace(/[[\].]/g, '\\$&')}:\\d+ > ${bracket(emoji[fam]).replace(/[[\].]/g, '\\$&')}:8080$`);
      expect(
        wire.tlsFlows.some((f) => flow.test(f)),
        wire.tlsFlows.join(', '),
      ).toBe(true);
      expect(wire.clientHellos).toBeGreaterThanOrEqual(1);
      expect(wire.serverHellos).toBeGreaterThanOrEqual(1);
      expect(wire.versions.length).toBeGreaterThan(0);
      // Sidecar to sidecar negotiates TLS 1.3, so the workload certificates never cross in clear.
      expect(
        wire.versions.every((v) => v === 'TLS 1.3'),
        wire.versions.join(),
      ).toBe(true);
      expect(wire.appDataRecords).toBeGreaterThanOrEqual(2);
      expect(fam === 'v4' ? wire.ipv4Frames : wire.ipv6Frames).toBeGreaterThan(0);
      // The request path (and so the response, which echoes it) never crossed in clear; the control did.
      expect(wire.cleartext).toEqual([control]);
    });
  });

  describe.each(FAMILIES)('2/7. refused clients on an mtls port (%s)', (family, fam) => {
    const cases = [
      ['plaintext TCP', () => undefined, /closed by the peer|ECONNRESET/],
      ['TLS without a client certificate', () => clients.none, /alert certificate required/],
      ['a client certificate from another CA', () => clients.otherCa, /alert unknown ca/],
      ['an expired client certificate', () => clients.expired, /alert certificate expired/],
    ] as const;

    it.each(cases)(`%s is refused over ${family}, and the app never sees its bytes`, async (_what, tls, why) => {
      const since = emoji.app!.mark();
      const mark = marker('refused');
      const files = tls();
      const r = await lab.http(outside, emoji[fam], EMOJI_PORTS.mtls, `/refused/${mark}`, files ? { tls: { ...files, servername: 'emoji-svc' } } : {});
      expectNoAnswer(r, mark);
      expect(r.error ?? '').toMatch(why);
      const barrier = `/barrier/${marker('b')}`;
      await meshedRequest(emoji[fam], barrier);
      const seen = bytesSeen(emoji.app!, since);
      expect(seen).not.toContain(mark);
      // Only the barrier's bytes reached the app.
      expect(emoji.app!.dataSince(since).every((e) => e.head.startsWith(`GET ${barrier} `))).toBe(true);
    });

    it(`a client with a mesh certificate is accepted over ${family}, from its own address to the app via Envoy`, async () => {
      const path = `/accepted/${marker('ok')}`;
      const r = await lab.http(outside, emoji[fam], EMOJI_PORTS.mtls, path, { tls: { ...clients.mesh, servername: 'emoji-svc' } });
      expect(r.status).toBe(200);
      expect(r.tls).toMatchObject({ protocol: 'TLSv1.3', authorized: true, peerSans: 'DNS:emoji-svc' });
      expect(JSON.parse(r.body ?? '{}')).toMatchObject({ service: 'emoji', port: 8080, path, peer: fam === 'v4' ? '127.0.0.6' : '::6' });
    });
  });

  describe('3. per-port policy', () => {
    it.each(FAMILIES)('a tls port accepts TLS without a client certificate (%s)', async (_family, fam) => {
      const path = `/tls/${marker('tls')}`;
      const r = await lab.http(outside, emoji[fam], EMOJI_PORTS.tls, path, { tls: { ...clients.none, servername: 'emoji-svc' } });
      expect(r.status, JSON.stringify(r)).toBe(200);
      expect(r.tls).toMatchObject({ authorized: true, peerSans: 'DNS:emoji-svc' });
      expect(JSON.parse(r.body ?? '{}')).toMatchObject({ port: EMOJI_PORTS.tls, path, peer: fam === 'v4' ? '127.0.0.6' : '::6' });
      // The same port refuses plaintext: it is TPROXY'd to Envoy's TLS chain.
      const plain = await lab.http(outside, emoji[fam], EMOJI_PORTS.tls, `/tls-plain/${marker('x')}`);
      expect(plain.status).toBeUndefined();
    });

    it.each(FAMILIES)('a plaintext port is reachable in clear and never touches Envoy (%s)', async (_family, fam) => {
      const stat = 'listener.meshlet-inbound.downstream_cx_total';
      const chain = 'tcp.meshlet-inbound-plaintext.downstream_cx_total';
      const before = await lab.envoyStat(emoji, stat);
      const path = `/metrics/${marker('plain')}`;
      const r = await lab.http(outside, emoji[fam], EMOJI_PORTS.plaintext, path);
      expect(r.status).toBe(200);
      // The app sees the client itself, not Envoy's 127.0.0.6.
      expect(JSON.parse(r.body ?? '{}')).toMatchObject({ port: EMOJI_PORTS.plaintext, path, peer: outside[fam] });
      expect(await lab.envoyStat(emoji, stat)).toBe(before);
      expect(await lab.envoyStat(emoji, chain)).toBe(0);
      // A control: an mtls request right after does count on the same listener.
      await meshedRequest(emoji[fam], `/count/${marker('c')}`);
      expect(await lab.envoyStat(emoji, stat)).toBe(before + 1);
    });
  });

  describe('4. no bypass', () => {
    it.each(FAMILIES)(
      'tproxy: straight to app B as the proxy uid in pod A, or from a non-meshed namespace, never reaches the app (%s)',
      async (_family, fam) => {
        const since = emoji.app!.mark();
        const asProxy = marker('bypass-uid');
        const fromOutside = marker('bypass-outside');
        const [a, b] = await Promise.all([
          lab.http(web, emoji[fam], EMOJI_PORTS.mtls, `/bypass/${asProxy}`, { uid: PROXY.uid, timeoutMs: 3_000 }),
          lab.http(outside, emoji[fam], EMOJI_PORTS.mtls, `/bypass/${fromOutside}`, { timeoutMs: 3_000 }),
        ]);
        expectNoAnswer(a, asProxy);
        expectNoAnswer(b, fromOutside);
        await meshedRequest(emoji[fam], `/barrier/${marker('b')}`);
        const seen = bytesSeen(emoji.app!, since);
        expect(seen).not.toContain(asProxy);
        expect(seen).not.toContain(fromOutside);
      },
    );

    it.each(FAMILIES)('tproxy: the app in pod A dialling app B directly is captured into mTLS by its own Envoy (%s)', async (_family, fam) => {
      const before = await lab.envoyStat(web, 'cluster.meshlet-outbound-mtls.upstream_cx_total');
      const path = `/direct/${marker('direct')}`;
      const r = await lab.appFetch(web, `http://${bracket(emoji[fam])}:${EMOJI_PORTS.mtls}${path}`);
      expect(r.status, JSON.stringify(r)).toBe(200);
      expect(JSON.parse(r.body ?? '{}')).toMatchObject({ service: 'emoji', path, peer: fam === 'v4' ? '127.0.0.6' : '::6' });
      expect(await lab.envoyStat(web, 'cluster.meshlet-outbound-mtls.upstream_cx_total')).toBe(before + 1);
    });

    it.each(FAMILIES)('mapped: direct connections to the app port are dropped; the mapped port is mTLS (%s)', async (_family, fam) => {
      const since = voting.app!.mark();
      const marks = [marker('mapped-outside'), marker('mapped-uid')];
      const [a, b, noCert] = await Promise.all([
        lab.http(outside, voting[fam], VOTING_PORTS.app, `/bypass/${marks[0]}`, { timeoutMs: 1_500 }),
        lab.http(web, voting[fam], VOTING_PORTS.app, `/bypass/${marks[1]}`, { uid: PROXY.uid, timeoutMs: 1_500 }),
        lab.http(outside, voting[fam], VOTING_PORTS.mapped, `/mapped/${marker('nocert')}`, { tls: clients.none }),
      ]);
      for (const [r, m] of [
        [a, marks[0]],
        [b, marks[1]],
      ] as const) {
        expectNoAnswer(r, m ?? '');
        expect(r.stage).toBe('connect');
        expect(r.error).toMatch(/timeout/);
      }
      expect(noCert.error ?? '').toMatch(/certificate required/);
      // Through the mesh it works: web's route to voting-svc:18080.
      const path = `/leaderboard`;
      const ok = await lab.appFetch(web, `http://${ROUTE.voting}${path}`);
      expect(ok.status, JSON.stringify(ok)).toBe(200);
      expect(JSON.parse(ok.body ?? '{}')).toMatchObject({ service: 'voting' });
      // Every connection the app saw came from Envoy (127.0.0.6), none from the clients, and no client's bytes.
      const peers = voting
        .app!.since(since)
        .filter((e) => e.ev === 'conn')
        .map((e) => e.peer);
      expect(peers.length).toBeGreaterThan(0);
      expect(
        peers.every((p) => p === '127.0.0.6'),
        peers.join(),
      ).toBe(true);
      for (const m of marks) expect(bytesSeen(voting.app!, since)).not.toContain(m);
    });
  });

  describe('5. egress routes', () => {
    it("Envoy resolves service names from the pod's /etc/hosts (c-ares), without asking DNS", async () => {
      const clusters = await lab.envoyAdmin(web, '/clusters');
      expect(clusters).toContain(`meshlet-route-emoji::${ADDR.emoji.v4}:8080::`);
      expect(clusters).toContain(`meshlet-route-voting::${ADDR.voting.v4}:${VOTING_PORTS.mapped}::`);
      // web's resolv.conf names the lab DNS responder, which knows neither name and never heard of them.
      const asked = dnsHost.dns!.lines.filter((l) => /"name":"(emoji|voting)-svc"/.test(l));
      expect(asked).toEqual([]);
    });

    it('a route with a port reaches the remote over mTLS', async () => {
      const path = `/route/${marker('r')}`;
      const r = await lab.appFetch(web, `http://${ROUTE.emoji}${path}`);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body ?? '{}')).toMatchObject({ service: 'emoji', port: 8080, path, peer: '127.0.0.6' });
    });

    it('a route without a port works on two different ports, each kept as dialled', async () => {
      for (const port of [EMOJI_PORTS.any1, EMOJI_PORTS.any2]) {
        const path = `/any/${marker(String(port))}`;
        const r = await lab.appFetch(web, `http://${ROUTE.emojiAny}:${port}${path}`);
        expect(r.status, JSON.stringify(r)).toBe(200);
        expect(JSON.parse(r.body ?? '{}')).toMatchObject({ service: 'emoji', port, path, peer: '127.0.0.6' });
      }
    });

    it('SAN pinning refuses a server whose certificate carries a different SAN', async () => {
      const since = emoji.app!.mark();
      const failures = 'cluster.meshlet-route-pinned-bad.ssl.fail_verify_san';
      const before = await lab.envoyStat(web, failures);
      const mark = marker('pinned');
      const bad = await lab.appFetch(web, `http://${ROUTE.pinnedBad}/pinned/${mark}`);
      expect(bad.ok, JSON.stringify(bad)).toBe(false);
      expect(await lab.envoyStat(web, failures)).toBeGreaterThan(before);
      // The same server with the right pin works.
      const good = await lab.appFetch(web, `http://${ROUTE.pinnedOk}/pinned-ok`);
      expect(good.status).toBe(200);
      await requestLogged(emoji.app!, '/pinned-ok');
      expect(bytesSeen(emoji.app!, since)).not.toContain(mark);
    });
  });

  describe('6. secure-by-default egress (capture)', () => {
    it.each(FAMILIES)('an app with no mesh config dials pod B directly, and the link shows mTLS (%s)', async (_family, fam) => {
      const mark = marker('capture');
      const cap = await lab.capture(emoji);
      const r = await lab.appFetch(web, `http://${bracket(emoji[fam])}:${EMOJI_PORTS.any1}/captured/${mark}`);
      await cap.stop();
      expect(r.status, JSON.stringify(r)).toBe(200);
      // Envoy on B saw a client certificate from the mesh: the mtls default port accepted it.
      expect(JSON.parse(r.body ?? '{}')).toMatchObject({ service: 'emoji', port: EMOJI_PORTS.any1, path: `/captured/${mark}` });
      const wire = await cap.analyze(lab.ns, { tlsPorts: [EMOJI_PORTS.any1], markers: [mark] });
      expect(wire.clientHellos).toBeGreaterThanOrEqual(1);
      expect(
        wire.tlsFlows.some((f) => f.includes(`${bracket(web[fam])}:`) && f.endsWith(`${bracket(emoji[fam])}:${EMOJI_PORTS.any1}`)),
        wire.tlsFlows.join(', '),
      ).toBe(true);
      expect(wire.cleartext).toEqual([]);
    });

    it('a non-meshed server is never sent the app bytes in clear', async () => {
      const since = dnsHost.app!.mark();
      const mark = marker('leak');
      const r = await lab.appFetch(web, `http://${ADDR.dns.v4}:8080/leak/${mark}`, 2_000);
      expect(r.ok).toBe(false);
      // What arrived was a TLS ClientHello (record type 0x16), not the request.
      const data = dnsHost.app!.dataSince(since);
      expect(data.length).toBeGreaterThan(0);
      expect(data.every((e) => e.head.startsWith('.') && !e.head.includes(mark))).toBe(true);
    });

    it('DNS still works over UDP and TCP port 53', async () => {
      const since = dnsHost.dns!.lines.length;
      const udp = await lab.probe(web, { op: 'dns', server: ADDR.dns.v4, name: 'db.mesh.test', type: 'A' });
      const tcp = await lab.probe(web, { op: 'dns', server: ADDR.dns.v4, name: 'db.mesh.test', type: 'AAAA', tcp: true });
      expect(udp).toMatchObject({ ok: true, answers: [ADDR.outside.v4] });
      expect(tcp).toMatchObject({ ok: true, answers: [ADDR.outside.v6] });
      // Both reached the responder straight from web: it is web's resolver (resolv.conf), so its port 53 is not captured.
      const queries = dnsHost.dns!.lines.slice(since).map((l) => JSON.parse(l) as { proto: string; peer: string });
      expect(queries.map((q) => `${q.proto} ${q.peer}`).sort()).toEqual([`tcp ${ADDR.web.v4}`, `udp ${ADDR.web.v4}`]);
    });

    it.each(FAMILIES)('an excluded CIDR is reached in clear (%s)', async (_family, fam) => {
      const mark = marker('excluded');
      const cap = await lab.capture(outside);
      const r = await lab.appFetch(web, `http://${bracket(outside[fam])}:8080/excluded/${mark}`);
      await cap.stop();
      expect(r.status, JSON.stringify(r)).toBe(200);
      // Straight from web's own address, not through a proxy.
      expect(JSON.parse(r.body ?? '{}')).toMatchObject({ service: 'outside', path: `/excluded/${mark}`, peer: web[fam] });
      const wire = await cap.analyze(lab.ns, { tlsPorts: [], markers: [mark] });
      expect(wire.cleartext).toEqual([mark]);
      expect(wire.clientHellos).toBe(0);
    });
  });
});
