// The attacks from the security review, replayed with real traffic in
// network namespaces on both backends: a foreign rule inserted above
// meshlet's jumps, a peer that routes foreign destinations through the pod,
// port 53 to a host that is not a resolver, an unlisted port in mapped mode,
// and UDP/ICMP leaving the pod.
import { describe, expect, it } from 'vitest';
import { runInit } from '../../src/iptables/init.js';
import { rulesInPlace } from '../../src/iptables/ready.js';
import { netnsUnavailable } from '../helpers/netns.js';
import { ADDR, BACKENDS, acceptsOf, accepted, dial, ping, queryDns, serve, serveDns, useBed } from './harness.js';
import { CASES, config } from './fixtures.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun('hardening in namespaces', netnsUnavailable());
const APP_UID = 1000;
const FOREIGN = ['-p', 'tcp', '-m', 'tcp', '--dport', '9000', '-j', 'ACCEPT'];

describe.skipIf(skip).each(BACKENDS)('hardening on %s', (backend) => {
  const t = useBed();

  it('a foreign ACCEPT inserted above the jumps is seen by the readiness check; a re-run of init puts meshlet first again', async () => {
    const c = config(CASES['tproxy-mixed']);
    await runInit(c, {}, t.bed.deps(backend));
    const proxy = await serve(t.lab, t.bed.pod, [c.proxy.inboundPort], { banner: 'proxy' });
    const app = await serve(t.lab, t.bed.pod, [9000], { plain: true, banner: 'app' });
    for (const bin of [`iptables-${backend}`, `ip6tables-${backend}`])
      await t.lab.must(t.bed.pod, [bin, '-w', '-t', 'mangle', '-I', 'PREROUTING', '1', ...FOREIGN]);

    // The attack works in the kernel: plaintext reaches the app past the proxy...
    for (const pod of [ADDR.podV4, ADDR.podV6]) expect(await dial(t.lab, t.bed.peer, pod, 9000)).toMatchObject({ result: 'connected', banner: 'app' });
    expect(acceptsOf(app)).toHaveLength(2);
    // ...and the readiness check, which used to look only at meshlet's own chains, says so for both families.
    const check = await rulesInPlace(c, t.bed.deps(backend));
    expect(check.ok).toBe(false);
    expect(check.missing).toEqual([
      `IPv4 mangle: meshlet's jumps are not the first rules of PREROUTING (first is "-A PREROUTING -p tcp -m tcp --dport 9000 -j ACCEPT"); re-run meshlet init`,
      `IPv6 mangle: meshlet's jumps are not the first rules of PREROUTING (first is "-A PREROUTING -p tcp -m tcp --dport 9000 -j ACCEPT"); re-run meshlet init`,
    ]);

    const rerun = await runInit(c, {}, t.bed.deps(backend));
    expect(rerun.text).toMatch(/^-I PREROUTING 1 -p tcp -j MESHLET_INBOUND$/m);
    expect(await rulesInPlace(c, t.bed.deps(backend))).toEqual({ ok: true, missing: [] });
    const save = await t.lab.must(t.bed.pod, [`iptables-${backend}-save`, '-t', 'mangle']);
    const prerouting = save.split('\n').filter((l) => l.startsWith('-A PREROUTING '));
    // The foreign rule is kept, below meshlet's jump, where it can no longer let anything past.
    expect(prerouting).toEqual(['-A PREROUTING -p tcp -j MESHLET_INBOUND', '-A PREROUTING -p tcp -m tcp --dport 9000 -j ACCEPT']);
    for (const pod of [ADDR.podV4, ADDR.podV6]) {
      expect(await dial(t.lab, t.bed.peer, pod, 9000)).toMatchObject({ result: 'connected', banner: 'proxy' });
      await accepted(proxy, (a) => a.local[0] === pod && a.local[1] === 9000);
    }
    expect(acceptsOf(app)).toHaveLength(2);
  });

  it('tproxy only intercepts traffic addressed to the pod: a peer routing 198.18.99.0/24 and 2001:db8:99::/64 through it is not intercepted', async () => {
    const c = config(CASES['tproxy-mixed']);
    // A network behind the pod: "far" owns the foreign destinations; the pod forwards.
    const far = await t.lab.netns('far');
    await t.lab.veth(
      { ns: t.bed.pod, ifname: 'eth1', addrs: ['198.18.98.1/24', '2001:db8:98::1/64'] },
      { ns: far, ifname: 'eth0', addrs: ['198.18.98.2/24', '2001:db8:98::2/64'] },
    );
    await t.lab.must(far, ['ip', 'addr', 'add', '198.18.99.1/32', 'dev', 'lo']);
    await t.lab.must(far, ['ip', '-6', 'addr', 'add', '2001:db8:99::1/128', 'dev', 'lo']);
    await t.lab.must(far, ['ip', 'route', 'add', 'default', 'via', '198.18.98.1']);
    await t.lab.must(far, ['ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:98::1']);
    await t.lab.must(t.bed.pod, ['ip', 'route', 'add', '198.18.99.0/24', 'via', '198.18.98.2']);
    await t.lab.must(t.bed.pod, ['ip', '-6', 'route', 'add', '2001:db8:99::/64', 'via', '2001:db8:98::2']);
    await t.lab.must(t.bed.pod, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    await t.lab.must(t.bed.peer, ['ip', 'route', 'add', '198.18.99.0/24', 'via', ADDR.podV4]);
    await t.lab.must(t.bed.peer, ['ip', '-6', 'route', 'add', '2001:db8:99::/64', 'via', ADDR.podV6]);

    // A router solicits neighbours for forwarded packets from its link-local
    // address, which the harness leaves out (it appears asynchronously): static ones.
    await t.lab.must(t.bed.pod, ['ip', '-6', 'addr', 'add', 'fe80::1:1/64', 'dev', 'eth0', 'nodad']);
    await t.lab.must(t.bed.pod, ['ip', '-6', 'addr', 'add', 'fe80::98:1/64', 'dev', 'eth1', 'nodad']);
    await t.lab.must(far, ['ip', '-6', 'addr', 'add', 'fe80::98:2/64', 'dev', 'eth0', 'nodad']);

    await runInit(c, {}, t.bed.deps(backend));
    const proxy = await serve(t.lab, t.bed.pod, [c.proxy.inboundPort], { banner: 'proxy' });
    const dest = await serve(t.lab, far, [8443], { plain: true, banner: 'far' });
    for (const [foreign, peer] of [
      ['198.18.99.1', ADDR.peerV4],
      ['2001:db8:99::1', ADDR.peerV6],
    ] as const) {
      expect(await dial(t.lab, t.bed.peer, foreign, 8443, { source: peer })).toMatchObject({ result: 'connected', banner: 'far' });
      // Routed untouched: the far end sees the peer itself, not the pod's Envoy.
      const a = await accepted(dest, (x) => x.local[0] === foreign);
      expect(a.peer[0]).toBe(peer);
    }
    // The control: the same port addressed to the pod is intercepted.
    expect(await dial(t.lab, t.bed.peer, ADDR.podV4, 8443)).toMatchObject({ result: 'connected', banner: 'proxy' });
    expect(acceptsOf(proxy).map((a) => a.local[0])).toEqual([ADDR.podV4]);
  });

  it('capture: TCP 53 is exempt only towards the resolvers; to any other host it is captured', async () => {
    const c = config(CASES['capture']);
    await runInit(c, {}, t.bed.deps(backend));
    const proxy = await serve(t.lab, t.bed.pod, [c.proxy.outboundPort], { banner: 'proxy' });
    const outside = await serve(t.lab, t.bed.peer, [53], { plain: true, banner: 'outside' });
    for (const [resolver, stranger] of [
      [ADDR.remoteV4, ADDR.strangerV4],
      [ADDR.remoteV6, ADDR.strangerV6],
    ] as const) {
      expect(await dial(t.lab, t.bed.pod, stranger, 53)).toMatchObject({ result: 'connected', banner: 'proxy' });
      await accepted(proxy, (a) => a.origDst?.[0] === stranger && a.origDst[1] === 53);
      expect(await dial(t.lab, t.bed.pod, resolver, 53)).toMatchObject({ result: 'connected', banner: 'outside' });
    }
    expect(
      acceptsOf(outside)
        .map((a) => a.local[0])
        .sort(),
    ).toEqual([ADDR.remoteV4, ADDR.remoteV6].sort());
  });

  it('mapped: an unlisted port refuses plaintext (ingress.default mtls); with default plaintext it stays open', async () => {
    const c = config(CASES['mapped']);
    await runInit(c, {}, t.bed.deps(backend));
    expect(await rulesInPlace(c, t.bed.deps(backend))).toEqual({ ok: true, missing: [] });
    const app = await serve(t.lab, t.bed.pod, [9000], { plain: true, banner: 'app' });
    await serve(t.lab, t.bed.pod, [18080], { plain: true, banner: 'proxy' });
    for (const pod of [ADDR.podV4, ADDR.podV6]) {
      expect(await dial(t.lab, t.bed.peer, pod, 9000, { timeoutMs: 500 })).toMatchObject({ result: 'timeout' });
      expect(await dial(t.lab, t.bed.peer, pod, 18080)).toMatchObject({ result: 'connected', banner: 'proxy' });
      // Replies to the pod's own connections are not new connections, so they pass.
      expect(await dial(t.lab, t.bed.pod, pod === ADDR.podV4 ? ADDR.peerV4 : ADDR.peerV6, 9001, { timeoutMs: 500 })).toMatchObject({ result: 'refused' });
    }
    expect(acceptsOf(app)).toHaveLength(0);

    const open = config(CASES['mapped-default-plaintext']);
    await runInit(open, {}, t.bed.deps(backend));
    for (const pod of [ADDR.podV4, ADDR.podV6]) expect(await dial(t.lab, t.bed.peer, pod, 9000)).toMatchObject({ result: 'connected', banner: 'app' });
  });

  it('non-TCP egress with capture on: dropped by default, except DNS to the resolvers, the proxy uid and IPv6 neighbour discovery', async () => {
    const c = config(CASES['capture']);
    expect(c.egress.nonTcp).toBe('drop');
    await runInit(c, {}, t.bed.deps(backend));
    const resolver = await serveDns(t.lab, t.bed.peer, ADDR.remoteV4, 53, ADDR.remoteV6, 'resolver');
    const stranger = await serveDns(t.lab, t.bed.peer, ADDR.strangerV4, 53, ADDR.strangerV6, 'stranger');
    // Neighbour discovery has to work for any IPv6 traffic; start from an empty cache.
    await t.lab.must(t.bed.pod, ['ip', '-6', 'neigh', 'flush', 'all']);
    for (const [res, str] of [
      [ADDR.remoteV4, ADDR.strangerV4],
      [ADDR.remoteV6, ADDR.strangerV6],
    ] as const) {
      expect(await queryDns(t.lab, t.bed.pod, res, 'udp', APP_UID), `UDP DNS to the resolver ${res}`).toMatchObject({ result: 'answered', banner: 'resolver' });
      expect(await queryDns(t.lab, t.bed.pod, str, 'udp', APP_UID), `UDP to ${str}`).toMatchObject({ result: 'error' });
      expect(await queryDns(t.lab, t.bed.pod, str, 'udp', c.proxy.uid), `proxy uid UDP to ${str}`).toMatchObject({ result: 'answered', banner: 'stranger' });
      expect(await ping(t.lab, t.bed.pod, str), `ICMP echo to ${str}`).toBe('eperm');
    }
    expect(stranger.lines.filter((l) => l.includes('"dns"')).length).toBe(2);
    expect(resolver.lines.filter((l) => l.includes('"dns"')).length).toBe(2);

    const allow = config(CASES['capture-nontcp-allow']);
    await runInit(allow, {}, t.bed.deps(backend));
    for (const str of [ADDR.strangerV4, ADDR.strangerV6]) {
      expect(await ping(t.lab, t.bed.pod, str)).toBe('reply');
      expect(await queryDns(t.lab, t.bed.pod, str, 'udp', APP_UID)).toMatchObject({ result: 'answered', banner: 'stranger' });
    }
  });
});
