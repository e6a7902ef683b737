// DNS capture rules for real, on both backends: the app's DNS (UDP and TCP
// 53, IPv4 and IPv6) lands on meshlet's DNS address and its answer comes
// back from the resolver's address; the proxy uid and meshlet's uid reach
// the real resolver; and the conntrack zone keeps meshlet's forwarded query
// apart from an app query with the very same 5-tuple.
import { describe, expect, it } from 'vitest';
import { runCleanup } from '../../src/iptables/cleanup.js';
import { runInit } from '../../src/iptables/init.js';
import { rulesInPlace } from '../../src/iptables/ready.js';
import { netnsUnavailable } from '../helpers/netns.js';
import { ADDR, BACKENDS, addForeignRules, queryDns, serveDns, snapshot, useBed } from './harness.js';
import { CASES, config } from './fixtures.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun('dns capture in namespaces', netnsUnavailable());
const APP_UID = 1000;

describe.skipIf(skip).each(BACKENDS)('dns capture on %s', (backend) => {
  const t = useBed();

  it('sends the app DNS to the DNS address, answered as if from the resolver; exempt uids reach the resolver', async () => {
    const c = config(CASES['dns']);
    await runInit(c, {}, t.bed.deps(backend));
    expect(await rulesInPlace(c, t.bed.deps(backend))).toEqual({ ok: true, missing: [] });
    await serveDns(t.lab, t.bed.pod, '127.0.0.1', 15053, '::1', 'meshlet');
    await serveDns(t.lab, t.bed.peer, ADDR.remoteV4, 53, ADDR.remoteV6, 'cluster');

    for (const remote of [ADDR.remoteV4, ADDR.remoteV6]) {
      for (const transport of ['udp', 'tcp'] as const) {
        const app = await queryDns(t.lab, t.bed.pod, remote, transport, APP_UID);
        // The reply's source is the resolver the app asked: the kernel undoes the DNAT, so stub resolvers accept it.
        expect(app, `${transport} ${remote}`).toMatchObject({ result: 'answered', banner: 'meshlet', peer: [remote, 53] });
        expect(await queryDns(t.lab, t.bed.pod, remote, transport, c.proxy.uid), `proxy uid ${transport} ${remote}`).toMatchObject({
          result: 'answered',
          banner: 'cluster',
        });
        // meshlet runs as the proxy uid by default, so root is an app like any other.
        expect(await queryDns(t.lab, t.bed.pod, remote, transport, 0), `root ${transport} ${remote}`).toMatchObject({ result: 'answered', banner: 'meshlet' });
      }
    }
  });

  it('a custom address and meshlet uid: only those uids are exempt, root is not', async () => {
    const c = config(CASES['dns-full']);
    await runInit(c, {}, t.bed.deps(backend));
    expect(await rulesInPlace(c, t.bed.deps(backend))).toEqual({ ok: true, missing: [] });
    await serveDns(t.lab, t.bed.pod, '127.0.0.53', 5353, '::1', 'meshlet');
    await serveDns(t.lab, t.bed.peer, ADDR.remoteV4, 53, ADDR.remoteV6, 'cluster');
    for (const remote of [ADDR.remoteV4, ADDR.remoteV6]) {
      expect(await queryDns(t.lab, t.bed.pod, remote, 'udp', 0)).toMatchObject({ result: 'answered', banner: 'meshlet', peer: [remote, 53] });
      expect(await queryDns(t.lab, t.bed.pod, remote, 'tcp', 0)).toMatchObject({ result: 'answered', banner: 'meshlet' });
      expect(await queryDns(t.lab, t.bed.pod, remote, 'udp', 1500)).toMatchObject({ result: 'answered', banner: 'cluster' });
      expect(await queryDns(t.lab, t.bed.pod, remote, 'udp', c.proxy.uid)).toMatchObject({ result: 'answered', banner: 'cluster' });
    }
  });

  it("meshlet's query with the same 5-tuple as a redirected app query still goes out (conntrack zone)", async () => {
    const c = config(CASES['dns']);
    await runInit(c, {}, t.bed.deps(backend));
    await serveDns(t.lab, t.bed.pod, '127.0.0.1', 15053, '::1', 'meshlet');
    await serveDns(t.lab, t.bed.peer, ADDR.remoteV4, 53, ADDR.remoteV6, 'cluster');
    for (const [remote, port] of [
      [ADDR.remoteV4, 40053],
      [ADDR.remoteV6, 40054],
    ] as const) {
      expect(await queryDns(t.lab, t.bed.pod, remote, 'udp', APP_UID, port)).toMatchObject({ banner: 'meshlet' });
      // Same source address and port, same resolver: only the zone tells the flows apart.
      expect(await queryDns(t.lab, t.bed.pod, remote, 'udp', c.proxy.uid, port)).toMatchObject({ result: 'answered', banner: 'cluster' });
    }
    // Control: without the zone rules the exempt query is caught by the app's conntrack entry.
    for (const bin of [`iptables-${backend}`, `ip6tables-${backend}`]) {
      await t.lab.must(t.bed.pod, [bin, '-w', '-t', 'raw', '-D', 'OUTPUT', '-p', 'udp', '-m', 'udp', '--dport', '53', '-j', 'MESHLET_DNS_ZONE']);
      await t.lab.must(t.bed.pod, [bin, '-w', '-t', 'raw', '-D', 'PREROUTING', '-p', 'udp', '-m', 'udp', '--sport', '53', '-j', 'MESHLET_DNS_REPLY']);
    }
    expect(await queryDns(t.lab, t.bed.pod, ADDR.remoteV4, 'udp', APP_UID, 40055)).toMatchObject({ banner: 'meshlet' });
    expect(await queryDns(t.lab, t.bed.pod, ADDR.remoteV4, 'udp', c.proxy.uid, 40055)).toMatchObject({ banner: 'meshlet' });
  });

  it('re-running init changes nothing; cleanup removes the DNS chains and jumps, raw table included', async () => {
    await addForeignRules(t.lab, t.bed.pod, backend);
    const before = await snapshot(t.lab, t.bed.pod, backend);
    const c = config(CASES['dns-full']);
    await runInit(c, {}, t.bed.deps(backend));
    const once = await snapshot(t.lab, t.bed.pod, backend);
    expect(once).toMatch(/MESHLET_DNS_ZONE/);
    const again = await runInit(c, {}, t.bed.deps(backend));
    expect(again.text).not.toMatch(/^-[AI] (PREROUTING|OUTPUT|INPUT) /m);
    expect(await snapshot(t.lab, t.bed.pod, backend)).toBe(once);
    // Turning DNS off (a re-init with another config) removes exactly the DNS part.
    await runInit(config(CASES['full']), {}, t.bed.deps(backend));
    expect(await t.lab.must(t.bed.pod, [`iptables-${backend}-save`])).not.toMatch(/MESHLET_DNS/);
    await runCleanup({}, t.bed.deps(backend));
    expect(await snapshot(t.lab, t.bed.pod, backend)).toBe(before);
  });

  it('without meshlet listening, the app DNS fails fast instead of leaking to the resolver', async () => {
    const c = config(CASES['dns']);
    await runInit(c, {}, t.bed.deps(backend));
    const cluster = await serveDns(t.lab, t.bed.peer, ADDR.remoteV4, 53, ADDR.remoteV6, 'cluster');
    expect(await queryDns(t.lab, t.bed.pod, ADDR.remoteV4, 'udp', APP_UID)).toMatchObject({ result: 'refused' });
    expect(await queryDns(t.lab, t.bed.pod, ADDR.remoteV6, 'tcp', APP_UID)).toMatchObject({ result: 'refused' });
    expect(cluster.lines.filter((l) => l.includes('"dns"'))).toEqual([]);
  });
});
