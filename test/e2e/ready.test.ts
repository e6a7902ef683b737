// Scenario 9: ready means safe. A pod's app is already listening when
// `meshlet init` runs (the worst case); from then until `meshlet wait-ready`
// succeeds, a client keeps trying to reach the app in clear and never does.
// The first meshed requests after wait-ready succeed, with no retry. And
// /ready is never reported while the iptables rules are missing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailable, MeshLab, type Host, type Pod, type ProbeResult } from '../../src/demo/lab.js';
import { bytesSeen, makeClients, marker, type Clients } from './support.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun('9. ready means safe', labUnavailable());

describe.skipIf(skip)('9. ready means safe', () => {
  let lab: MeshLab;
  let web: Pod;
  let emoji: Pod;
  let voting: Pod;
  let outside: Host;
  let clients: Clients;

  beforeAll(async () => {
    lab = await MeshLab.create({
      pods: [
        { name: 'web', app: { ports: [8080] }, config: { egress: { routes: [{ name: 'emoji', listen: '127.137.0.1:8081', remote: 'emoji-svc:8080' }] } } },
        { name: 'emoji', app: { ports: [8080] }, config: {} },
        { name: 'voting', config: {} },
      ],
      hosts: [{ name: 'outside' }],
    });
    web = lab.pod('web');
    emoji = lab.pod('emoji');
    voting = lab.pod('voting');
    outside = lab.host('outside');
    try {
      clients = await makeClients(lab);
      // Only web is started; emoji and voting start inside the tests, under observation.
      await lab.start([web]);
    } catch (err) {
      await lab.close();
      throw err;
    }
  }, 90_000);

  afterAll(async () => {
    expect((await lab?.close()) ?? []).toEqual([]);
  }, 60_000);

  it('from meshlet init until wait-ready succeeds, no plaintext connection reaches the app; right after, meshed traffic flows', async () => {
    // Before init the app is reachable in clear: the prober works.
    const control = await lab.http(outside, emoji.v4, 8080, `/before-init/${marker('c')}`);
    expect(control.status).toBe(200);

    await lab.init(emoji);
    const since = emoji.app!.mark();
    const mark = marker('window');
    const plain = lab.repeat(
      outside,
      { op: 'http', host: emoji.v4, port: 8080, path: `/window/${mark}`, timeoutMs: 300 },
      { everyMs: 100, maxCount: 600, maxMs: 60_000 },
    );
    const plain6 = lab.repeat(
      outside,
      { op: 'http', host: emoji.v6, port: 8080, path: `/window6/${mark}`, timeoutMs: 300 },
      { everyMs: 100, maxCount: 600, maxMs: 60_000 },
    );
    // The window is observed, not hoped for: meshlet run starts only once each
    // family's loop has had two attempts time out against the installed rules
    // (no Envoy listens yet, so the SYNs are dropped), however slow the machine.
    const dropped = (a: ProbeResult): boolean => a.stage === 'connect' && /timeout/.test(a.error ?? '');
    await Promise.all([plain.attempts(2, dropped, 20_000), plain6.attempts(2, dropped, 20_000)]);
    lab.run(emoji);
    const ready = await lab.waitReadyResult(emoji, 30);
    const readyAt = Date.now();
    // The first requests after ready, with no retry: through web's route, and from a mesh client.
    const [viaRoute, viaClient] = await Promise.all([
      lab.appFetch(web, `http://127.137.0.1:8081/after-ready/${mark}`),
      lab.http(outside, emoji.v4, 8080, `/after-ready-client/${mark}`, { tls: { ...clients.mesh, servername: 'emoji-svc' } }),
    ]);
    const attempts: ProbeResult[] = [...(await plain.stop()), ...(await plain6.stop())];

    expect(ready.code, ready.stderr).toBe(0);
    expect(viaRoute.status, JSON.stringify(viaRoute)).toBe(200);
    expect(viaClient.status, JSON.stringify(viaClient)).toBe(200);
    const before = attempts.filter((a) => (a.at ?? 0) + a.ms < readyAt);
    expect(before.length, 'attempts made between init and ready').toBeGreaterThanOrEqual(4);
    // Not one plaintext attempt got an HTTP answer, before or after ready.
    expect(attempts.filter((a) => a.status !== undefined)).toEqual([]);
    // Before Envoy listened the SYNs were dropped (timeouts), then TLS refused them.
    expect(before.some((a) => a.stage === 'connect' && /timeout/.test(a.error ?? ''))).toBe(true);
    expect(bytesSeen(emoji.app!, since)).not.toMatch(/\/window6?\//);
  });

  it('/ready stays not-ready while the iptables rules are missing, and turns ready once init has run', async () => {
    lab.run(voting);
    const notYet = await lab.waitReadyResult(voting, 3);
    expect(notYet.code).toBe(1);
    expect(notYet.stderr).toMatch(/not ready after 3s/);
    expect(notYet.stderr).toMatch(/iptables/i);
    await lab.init(voting);
    const ready = await lab.waitReadyResult(voting, 30);
    expect(ready.code, ready.stderr).toBe(0);
  });
});
