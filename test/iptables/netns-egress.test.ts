// Outbound capture and portless routes, for real, on both backends: captured
// connections reach the outbound port with SO_ORIGINAL_DST intact, while the
// proxy uid, loopback, DNS and the excluded ports and CIDRs go out untouched.
import { describe, expect, it } from 'vitest';
import { runInit } from '../../src/iptables/init.js';
import { rulesInPlace } from '../../src/iptables/ready.js';
import { netnsUnavailable } from '../helpers/netns.js';
import { ADDR, BACKENDS, acceptsOf, accepted, dial, serve, useBed } from './harness.js';
import { CASES, MANY_PORTS, config } from './fixtures.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun('egress in namespaces', netnsUnavailable());

describe.skipIf(skip).each(BACKENDS)('egress on %s', (backend) => {
  const t = useBed();

  it('capture: redirects outbound TCP with its original destination; exemptions bypass it', async () => {
    const c = config(CASES['capture']);
    await runInit(c, {}, t.bed.deps(backend));
    expect(await rulesInPlace(c, t.bed.deps(backend))).toEqual({ ok: true, missing: [] });
    const proxy = await serve(t.lab, t.bed.pod, [c.proxy.outboundPort], { banner: 'proxy' });
    const lastExcluded = MANY_PORTS[MANY_PORTS.length - 1] ?? 0;
    const outside = await serve(t.lab, t.bed.peer, [8081, 53, lastExcluded], { plain: true, banner: 'outside' });
    await serve(t.lab, t.bed.pod, [8082], { plain: true, banner: 'local' });

    for (const [remote, excluded, pod] of [
      [ADDR.remoteV4, ADDR.excludedV4, ADDR.podV4],
      [ADDR.remoteV6, ADDR.excludedV6, ADDR.podV6],
    ] as const) {
      expect(await dial(t.lab, t.bed.pod, remote, 8081)).toMatchObject({ result: 'connected', banner: 'proxy' });
      const a = await accepted(proxy, (x) => x.origDst?.[0] === remote && x.origDst[1] === 8081);
      expect(a.listen).toBe(c.proxy.outboundPort);
      // Exempt: the proxy uid, DNS to a resolver (the fixtures' resolv.conf), a port in the second multiport rule, an excluded CIDR.
      expect(await dial(t.lab, t.bed.pod, remote, 8081, { uid: c.proxy.uid })).toMatchObject({ result: 'connected', banner: 'outside' });
      expect(await dial(t.lab, t.bed.pod, remote, 53)).toMatchObject({ result: 'connected', banner: 'outside' });
      expect(await dial(t.lab, t.bed.pod, remote, lastExcluded)).toMatchObject({ result: 'connected', banner: 'outside' });
      expect(await dial(t.lab, t.bed.pod, excluded, 8081)).toMatchObject({ result: 'connected', banner: 'outside' });
      // Loopback and the pod's own address stay local.
      expect(await dial(t.lab, t.bed.pod, pod, 8082)).toMatchObject({ result: 'connected', banner: 'local' });
      expect(await dial(t.lab, t.bed.pod, remote === ADDR.remoteV4 ? '127.0.0.1' : '::1', 8082)).toMatchObject({ result: 'connected', banner: 'local' });
    }
    expect(acceptsOf(proxy)).toHaveLength(2);
    expect(acceptsOf(outside)).toHaveLength(8);
  });

  it('capture with no proxy listening fails closed: refused, never sent out', async () => {
    const c = config(CASES['capture']);
    await runInit(c, {}, t.bed.deps(backend));
    const outside = await serve(t.lab, t.bed.peer, [8081], { plain: true, banner: 'outside' });
    expect(await dial(t.lab, t.bed.pod, ADDR.remoteV4, 8081)).toMatchObject({ result: 'refused' });
    expect(await dial(t.lab, t.bed.pod, ADDR.remoteV6, 8081)).toMatchObject({ result: 'refused' });
    expect(acceptsOf(outside)).toHaveLength(0);
  });

  it('portless routes: any port on the listen IP reaches the portless port, dialled port kept', async () => {
    const c = config(CASES['portless']);
    await runInit(c, {}, t.bed.deps(backend));
    expect((await rulesInPlace(c, t.bed.deps(backend))).ok).toBe(true);
    const proxy = await serve(t.lab, t.bed.pod, [c.proxy.portlessEgressPort], { banner: 'proxy' });
    for (const [ip, port] of [
      ['127.137.0.2', 5432],
      ['127.137.0.2', 443],
      ['127.137.0.3', 6379],
    ] as const) {
      expect(await dial(t.lab, t.bed.pod, ip, port)).toMatchObject({ result: 'connected', banner: 'proxy' });
      await accepted(proxy, (x) => x.origDst?.[0] === ip && x.origDst[1] === port);
    }
    // The proxy's own connections are not redirected; a route with a port is not either.
    expect(await dial(t.lab, t.bed.pod, '127.137.0.2', 5432, { uid: c.proxy.uid })).toMatchObject({ result: 'refused' });
    expect(await dial(t.lab, t.bed.pod, '127.137.0.1', 8081)).toMatchObject({ result: 'refused' });
    // Without capture, other outbound traffic is untouched.
    const outside = await serve(t.lab, t.bed.peer, [8081], { plain: true, banner: 'outside' });
    expect(await dial(t.lab, t.bed.pod, ADDR.remoteV4, 8081)).toMatchObject({ result: 'connected', banner: 'outside' });
    expect(acceptsOf(outside)).toHaveLength(1);
  });
});
