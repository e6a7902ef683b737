// A replay of Contrast's own service-mesh end-to-end test (TestIngressEgress
// in e2e/servicemesh of edgelesssys/contrast) against meshlet, as a Contrast
// user who swapped in meshlet's image would run it. Four pods, with exactly the
// environment Contrast's harness gives them (its emojivoto annotations, then
// PatchServiceMeshAdminInterface(…, 9901)), each running meshlet as the one
// container that replaces Contrast's sidecar (`meshlet -l debug`, no command),
// behind the pod VM's default-deny rule. Every step is checked with curl and
// openssl only, as Contrast's test does with curl and iptables-save.
//
// Stand-ins for what Kubernetes would do, each named where it is set up:
// - the pod VM's default-deny INPUT rule (a unit in Contrast's VM image);
// - web-svc:443 → web:8080 (a Service; kube-proxy's DNAT, here in vote-bot);
// - `iptables-save` is the legacy one, as in the image (see the Dockerfile).
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailable, MeshLab, type Host, type Pod } from '../../src/demo/lab.js';
import { DEFAULT_DENY_SPEC } from '../../src/iptables/default-deny.js';
import { marker, startOrClose } from './support.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun("Contrast's TestIngressEgress replay", labUnavailable());
const ADMIN = '9901';
const ENVOY_ARGS = ['-l', 'debug'];
const WEB_EGRESS = 'emoji#127.137.0.1:8081#emoji-svc:8080##voting#127.137.0.2:8081#voting-svc:8080';
/** A rule in INPUT that looks like the default-deny one but is not it: it must survive. */
const DECOY = ['-p', 'udp', '--dport', '9', '-m', 'conntrack', '!', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'DROP'];

describe.skipIf(skip)("Contrast's TestIngressEgress, replayed against meshlet's image mode", () => {
  let lab: MeshLab;
  let emoji: Pod;
  let voting: Pod;
  let web: Pod;
  let bot: Pod;
  let outside: Host;
  let imageBin: string;

  const sh = (m: { ns: string }, argv: string[]) =>
    lab.ns.exec(m.ns, argv, { timeoutMs: 20_000, env: { ...process.env, PATH: `${imageBin}:${process.env['PATH'] ?? ''}` } });

  beforeAll(async () => {
    lab = await MeshLab.create({
      pods: [
        {
          name: 'emoji',
          app: { ports: [8080, 8801] },
          contrastImage: ENVOY_ARGS,
          contrastEnv: { CONTRAST_INGRESS_PROXY_CONFIG: `##admin#${ADMIN}#true`, CONTRAST_ADMIN_PORT: ADMIN },
        },
        {
          name: 'voting',
          app: { ports: [8080, 8801] },
          contrastImage: ENVOY_ARGS,
          contrastEnv: { CONTRAST_INGRESS_PROXY_CONFIG: `##admin#${ADMIN}#true`, CONTRAST_ADMIN_PORT: ADMIN },
        },
        {
          name: 'web',
          app: { ports: [8080], upstreams: { emoji: 'http://127.137.0.1:8081', voting: 'http://127.137.0.2:8081' } },
          contrastImage: ENVOY_ARGS,
          contrastEnv: {
            CONTRAST_INGRESS_PROXY_CONFIG: `web#8080#false##admin#${ADMIN}#true`,
            CONTRAST_EGRESS_PROXY_CONFIG: WEB_EGRESS,
            CONTRAST_ADMIN_PORT: ADMIN,
          },
        },
        // The vote-bot is the client: curl stands in for emojivoto-vote-bot.
        {
          name: 'vote-bot',
          contrastImage: ENVOY_ARGS,
          contrastEnv: {
            CONTRAST_INGRESS_PROXY_CONFIG: `DISABLED##admin#${ADMIN}#true`,
            CONTRAST_EGRESS_PROXY_CONFIG: 'web#127.137.0.3:8081#web-svc:443',
            CONTRAST_ADMIN_PORT: ADMIN,
          },
        },
      ],
      hosts: [{ name: 'outside' }],
    });
    await startOrClose(lab, async () => {
      [emoji, voting, web, bot] = ['emoji', 'voting', 'web', 'vote-bot'].map((n) => lab.pod(n)) as [Pod, Pod, Pod, Pod];
      outside = lab.host('outside');
      imageBin = path.join(lab.root, 'image-bin');
      mkdirSync(imageBin);
      symlinkSync('/usr/sbin/iptables-legacy-save', path.join(imageBin, 'iptables-save'));
      for (const pod of lab.pods.values()) {
        await lab.ns.must(pod.ns, ['iptables-legacy', '-w', '-I', 'INPUT', ...DEFAULT_DENY_SPEC]);
        await lab.ns.must(pod.ns, ['iptables-legacy', '-w', '-A', 'INPUT', ...DECOY]);
      }
      await lab.ns.must(bot.ns, [
        'iptables-legacy',
        '-w',
        '-t',
        'nat',
        '-A',
        'OUTPUT',
        '-d',
        web.v4,
        '-p',
        'tcp',
        '--dport',
        '443',
        '-j',
        'DNAT',
        '--to-destination',
        `${web.v4}:8080`,
      ]);
    });
  }, 120_000);

  afterAll(async () => {
    expect((await lab?.close()) ?? []).toEqual([]);
  }, 60_000);

  const ca = (p: Pod): string => path.join(p.certDir, 'mesh-ca.pem');
  const mtls = (p: Pod): string[] => ['--cert', path.join(p.certDir, 'certChain.pem'), '--key', path.join(p.certDir, 'key.pem')];

  it('1-2. every pod became ready: the ready file exists, the default-deny rule is gone and nothing else in INPUT was touched', async () => {
    for (const pod of lab.pods.values()) {
      expect(existsSync(lab.readyFile(pod)), pod.name).toBe(true);
      const filter = (await sh(pod, ['iptables-legacy-save', '-t', 'filter'])).stdout;
      expect(filter, pod.name).not.toMatch(/^-A INPUT -m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP$/m);
      expect(filter, pod.name).toMatch(/^-A INPUT -p udp -m udp --dport 9 -m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP$/m);
      expect(pod.meshlet?.output(), pod.name).toMatch(/"removedFrom":\["iptables-legacy"\]/);
    }
  });

  it('3. TLS to web:8080 works without a client certificate and the page is served', async () => {
    const r = await sh(outside, ['curl', '-sS', '--max-time', '10', '--cacert', ca(web), `https://web-svc:8080/`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('emoji   http://127.137.0.1:8081/emoji -> 200');
    // The server asks for no client certificate on this port.
    const o = await sh(outside, [
      'openssl',
      's_client',
      '-connect',
      `${web.v4}:8080`,
      '-servername',
      'web-svc',
      '-CAfile',
      ca(web),
      '-verify_return_error',
      '-brief',
    ]);
    expect(o.code, o.stderr).toBe(0);
    expect(`${o.stdout}${o.stderr}`).toMatch(/Verification: OK/);
  });

  it('4. an unlisted port on emoji (8801) needs a client certificate; with the mesh certificate it answers', async () => {
    const connect = ['--connect-to', `emoji-svc:8801:${emoji.v4}:8801`];
    const mark = emoji.app!.mark();
    const without = await sh(web, ['curl', '-sS', '--max-time', '10', '--cacert', ca(web), ...connect, 'https://emoji-svc:8801/metrics']);
    expect(without.code).not.toBe(0);
    // TLS 1.3: the server refuses after the client's handshake flight, so curl reports the alert or a
    // closed connection, depending on timing; what matters is that no answer came back.
    expect(without.stdout).toBe('');
    const withCert = await sh(web, ['curl', '-sS', '--max-time', '10', '--cacert', ca(web), ...mtls(web), ...connect, 'https://emoji-svc:8801/metrics']);
    expect(withCert.code, withCert.stderr).toBe(0);
    expect(JSON.parse(withCert.stdout)).toMatchObject({ service: 'emoji', path: '/metrics' });
    // Only the request with the certificate reached the app.
    expect(emoji.app!.since(mark).filter((e) => e.ev === 'request' && e.path === '/metrics')).toHaveLength(1);
  });

  it('5. the admin port serves metrics to another pod, on IPv4 and IPv6, and nothing of Envoy admin beyond them', async () => {
    for (const host of [emoji.v4, `[${emoji.v6}]`]) {
      const r = await sh(voting, ['curl', '-fsS', '--max-time', '10', `http://${host}:${ADMIN}/stats/prometheus`]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^envoy_server_live(\{\})? 1$/m);
      expect(r.stdout).toMatch(/^meshlet_xds_acks_total\{type="Listener"\} [1-9]/m);
      expect(r.stdout).toMatch(/^meshlet_envoy_stats_up 1$/m);
      const types = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('# TYPE '))
        .map((l) => l.split(' ')[2]);
      expect(new Set(types).size, 'each metric family once').toBe(types.length);
    }
    const code = async (args: string[]): Promise<string> =>
      (await sh(voting, ['curl', '-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', ...args])).stdout;
    const base = `http://${emoji.v4}:${ADMIN}`;
    expect(await code([`${base}/ready`])).toBe('200');
    expect(await code(['-X', 'POST', `${base}/stats/prometheus`])).toBe('405');
    expect(await code(['-X', 'POST', `${base}/quitquitquit`])).toBe('404');
    expect(await code(['-X', 'POST', `${base}/logging?level=trace`])).toBe('404');
    expect(await code(['-X', 'POST', `${base}/drain_listeners`])).toBe('404');
    expect(await code([`${base}/config_dump`])).toBe('404');
    expect(await code([`${base}/stats/prometheus?filter=.`])).toBe('404');
    // Envoy's own admin port is not reachable from another pod at all.
    const admin = await sh(voting, ['curl', '-sS', '--max-time', '5', `http://${emoji.v4}:15000/ready`]);
    expect(admin.code).not.toBe(0);
    // And Envoy is still serving after all that.
    expect((await sh(voting, ['curl', '-fsS', '--max-time', '10', `${base}/stats/prometheus`])).stdout).toMatch(/^envoy_server_live(\{\})? 1$/m);
  });

  it("6. vote-bot → web → emoji works end to end, and emoji's own localhost:8801 is not captured", async () => {
    const mark = marker('bot');
    const r = await sh(bot, ['curl', '-fsS', '--max-time', '10', `http://127.137.0.3:8081/?bot=${mark}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('emoji   http://127.137.0.1:8081/emoji -> 200');
    expect(r.stdout).toContain('voting  http://127.137.0.2:8081/leaderboard -> 200');
    // web's app was reached through its Envoy (TLS), and emoji's through its own (mTLS).
    await web.app!.waitFor((e) => e.ev === 'request' && e.path === `/?bot=${mark}` && e.peer === '127.0.0.6');
    await emoji.app!.waitFor((e) => e.ev === 'request' && e.path === '/emoji' && e.peer === '127.0.0.6');
    const local = await sh(emoji, ['curl', '-fsS', '--max-time', '10', 'http://localhost:8801/metrics']);
    expect(local.code, local.stderr).toBe(0);
    expect(JSON.parse(local.stdout)).toMatchObject({ service: 'emoji', port: 8801 });
  });

  it('7. voting: sh -ec "iptables-save; iptables-legacy-save" exits 0 with empty stderr and shows TPROXY', async () => {
    const r = await sh(voting, ['sh', '-ec', 'iptables-save; iptables-legacy-save']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('-j TPROXY');
  });

  it('8. vote-bot (ingress DISABLED): the same command exits 0 with empty stderr and shows no TPROXY', async () => {
    const r = await sh(bot, ['sh', '-ec', 'iptables-save; iptables-legacy-save']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toContain('-j TPROXY');
  });
});
