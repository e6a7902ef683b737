// Inbound interception, for real, in network namespaces, on both backends:
// tproxy keeps the original destination, plaintext ports bypass the proxy,
// replies to the pod's own connections survive, the proxy's hop to the app is
// not re-captured, and mapped mode drops direct access to app ports.
import { describe, expect, it } from 'vitest';
import { runInit } from '../../src/iptables/init.js';
import { rulesInPlace } from '../../src/iptables/ready.js';
import { netnsUnavailable } from '../helpers/netns.js';
import { ADDR, BACKENDS, acceptsOf, accepted, dial, serve, useBed } from './harness.js';
import { CASES, config } from './fixtures.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun('ingress in namespaces', netnsUnavailable());

describe.skipIf(skip).each(BACKENDS)('ingress on %s', (backend) => {
  const t = useBed();

  it('tproxy: captures with the original destination, lets plaintext and established flows through', async () => {
    const c = config(CASES['tproxy-mixed']);
    await runInit(c, {}, t.bed.deps(backend));
    expect(await rulesInPlace(c, t.bed.deps(backend))).toEqual({ ok: true, missing: [] });
    const proxy = await serve(t.lab, t.bed.pod, [c.proxy.inboundPort], { banner: 'proxy' });
    const app = await serve(t.lab, t.bed.pod, [8080, 7890], { plain: true, banner: 'app' });
    const outside = await serve(t.lab, t.bed.peer, [8081], { plain: true, banner: 'outside' });

    for (const [pod, peer] of [
      [ADDR.podV4, ADDR.peerV4],
      [ADDR.podV6, ADDR.peerV6],
    ] as const) {
      // A tls port and an unlisted port: both TPROXY'd, original destination kept.
      for (const port of [8080, 12345]) {
        expect(await dial(t.lab, t.bed.peer, pod, port)).toMatchObject({ result: 'connected', banner: 'proxy' });
        const a = await accepted(proxy, (x) => x.local[1] === port && x.local[0] === pod);
        expect(a.peer[0]).toBe(peer);
      }
      // plaintext goes straight to the app.
      expect(await dial(t.lab, t.bed.peer, pod, 7890)).toMatchObject({ result: 'connected', banner: 'app' });
      // Replies to a connection the pod opened are diverted, not dropped.
      const remote = pod === ADDR.podV4 ? ADDR.peerV4 : ADDR.peerV6;
      expect(await dial(t.lab, t.bed.pod, remote, 8081)).toMatchObject({ result: 'connected', banner: 'outside' });
      // The proxy's hop to the app (from 127.0.0.6 / ::6, arriving on lo) is not re-captured.
      const source = pod === ADDR.podV4 ? '127.0.0.6' : '::6';
      expect(await dial(t.lab, t.bed.pod, pod, 8080, { uid: c.proxy.uid, source })).toMatchObject({ result: 'connected', banner: 'app' });
      // The proxy can never dial its own inbound listener (Contrast bug #1142).
      expect(await dial(t.lab, t.bed.pod, pod, c.proxy.inboundPort, { uid: c.proxy.uid })).toMatchObject({ result: 'refused' });
    }
    expect(
      acceptsOf(app)
        .map((a) => a.listen)
        .sort(),
    ).toEqual([7890, 7890, 8080, 8080]);
    expect(acceptsOf(outside)).toHaveLength(2);
  });

  it('tproxy with default plaintext: only listed ports are captured', async () => {
    const c = config(CASES['tproxy-default-plaintext']);
    await runInit(c, {}, t.bed.deps(backend));
    const proxy = await serve(t.lab, t.bed.pod, [c.proxy.inboundPort]);
    await serve(t.lab, t.bed.pod, [9999], { plain: true, banner: 'app' });
    for (const pod of [ADDR.podV4, ADDR.podV6]) {
      expect(await dial(t.lab, t.bed.peer, pod, 8443)).toMatchObject({ result: 'connected', banner: 'proxy' });
      await accepted(proxy, (x) => x.local[0] === pod && x.local[1] === 8443);
      expect(await dial(t.lab, t.bed.peer, pod, 9999)).toMatchObject({ result: 'connected', banner: 'app' });
    }
  });

  it('mapped: direct access to app ports is dropped, mapped and plaintext ports are open', async () => {
    const c = config(CASES['mapped']);
    await runInit(c, {}, t.bed.deps(backend));
    expect((await rulesInPlace(c, t.bed.deps(backend))).ok).toBe(true);
    await serve(t.lab, t.bed.pod, [8080, 9090, 7890], { plain: true, banner: 'app' });
    await serve(t.lab, t.bed.pod, [18080, 19090], { plain: true, banner: 'proxy' });
    for (const pod of [ADDR.podV4, ADDR.podV6]) {
      expect(await dial(t.lab, t.bed.peer, pod, 8080, { timeoutMs: 500 })).toMatchObject({ result: 'timeout' });
      expect(await dial(t.lab, t.bed.peer, pod, 9090, { timeoutMs: 500 })).toMatchObject({ result: 'timeout' });
      expect(await dial(t.lab, t.bed.peer, pod, 18080)).toMatchObject({ result: 'connected', banner: 'proxy' });
      expect(await dial(t.lab, t.bed.peer, pod, 7890)).toMatchObject({ result: 'connected', banner: 'app' });
      // The proxy forwards over loopback, which stays open.
      expect(await dial(t.lab, t.bed.pod, pod, 8080, { uid: c.proxy.uid })).toMatchObject({ result: 'connected', banner: 'app' });
    }
  });

  it('fail closed: with the rules in place and no proxy yet, inbound SYNs are dropped and never reach the app', async () => {
    // Startup order step 1 done (rules), step 3 not yet (Envoy): the app is
    // already listening, yet nothing gets through until the proxy listens.
    const c = config(CASES['tproxy-mixed']);
    await runInit(c, {}, t.bed.deps(backend));
    const app = await serve(t.lab, t.bed.pod, [8080], { plain: true, banner: 'app' });
    for (const pod of [ADDR.podV4, ADDR.podV6]) expect(await dial(t.lab, t.bed.peer, pod, 8080, { timeoutMs: 500 })).toMatchObject({ result: 'timeout' });
    expect(acceptsOf(app)).toHaveLength(0);
    await serve(t.lab, t.bed.pod, [c.proxy.inboundPort], { banner: 'proxy' });
    for (const pod of [ADDR.podV4, ADDR.podV6]) expect(await dial(t.lab, t.bed.peer, pod, 8080)).toMatchObject({ result: 'connected', banner: 'proxy' });
    expect(acceptsOf(app)).toHaveLength(0);
  });

  it('disabled: nothing is installed', async () => {
    const c = config(CASES['disabled']);
    const r = await runInit(c, {}, t.bed.deps(backend));
    expect(r.plan.families.every((f) => f.restore === '' && f.routing.length === 0)).toBe(true);
    await serve(t.lab, t.bed.pod, [8080], { plain: true, banner: 'app' });
    expect(await dial(t.lab, t.bed.peer, ADDR.podV4, 8080)).toMatchObject({ result: 'connected', banner: 'app' });
  });
});
