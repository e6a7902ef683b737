// Scenario 8: Contrast drop-in. Contrast's emojivoto, configured only through
// CONTRAST_* variables with the annotation values of Contrast's own end-to-end
// test, and no --config. Contrast's fixed paths (/contrast/tls-config,
// /var/run/meshlet) are per pod, as a pod's volumes make them: each pod's
// meshlet runs in a private mount namespace with its own tmpfs on
// /var/run/meshlet and its own certificates bind-mounted on
// /contrast/tls-config (MeshLab.runArgv).
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailable, MeshLab, type Host, type Pod } from '../../src/demo/lab.js';
import { marker, startOrClose } from './support.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun('8. Contrast drop-in', labUnavailable());
const EGRESS = 'emoji#127.137.0.1:8081#emoji-svc:8080##voting#127.137.0.2:8081#voting-svc:8080';
const listRunDir = (): string[] => (existsSync('/var/run/meshlet') ? readdirSync('/var/run/meshlet').sort() : []);

describe.skipIf(skip)('8. Contrast drop-in: emojivoto configured only by CONTRAST_* variables', () => {
  let lab: MeshLab;
  let web: Pod;
  let emoji: Pod;
  let outside: Host;
  let hostRunDir: string[];

  beforeAll(async () => {
    hostRunDir = listRunDir();
    lab = await MeshLab.create({
      pods: [
        {
          name: 'web',
          app: { ports: [8080], upstreams: { emoji: 'http://127.137.0.1:8081', voting: 'http://127.137.0.2:8081' } },
          contrastEnv: { CONTRAST_INGRESS_PROXY_CONFIG: 'web#8080#false', CONTRAST_EGRESS_PROXY_CONFIG: EGRESS, CONTRAST_ADMIN_PORT: '9901' },
        },
        // An empty ingress annotation: mTLS on every port.
        // Contrast sets a variable only for a non-empty annotation: emoji has none at all.
        { name: 'emoji', app: { ports: [8080] }, contrastEnv: {} },
        { name: 'voting', app: { ports: [8080] }, contrastEnv: { CONTRAST_INGRESS_PROXY_CONFIG: '' } },
      ],
      hosts: [{ name: 'outside' }],
    });
    await startOrClose(lab);
    web = lab.pod('web');
    emoji = lab.pod('emoji');
    outside = lab.host('outside');
  }, 90_000);

  afterAll(async () => {
    expect((await lab?.close()) ?? []).toEqual([]);
  }, 60_000);

  it('every pod took its config from the environment, with its own socket and certificates', () => {
    for (const pod of lab.pods.values()) {
      expect(pod.configPath).toBeUndefined();
      // emoji has no variable at all, which Contrast reads as mTLS on every port.
      const source = pod.spec.name === 'emoji' ? 'defaults \\(no --config[^"]*' : 'environment \\(CONTRAST_[^)]*\\)';
      expect(pod.meshlet?.output()).toMatch(new RegExp(`"source":"${source}","trust":"[^"]*","socket":"/var/run/meshlet/xds.sock".*"msg":"meshlet serving"`));
      // What meshlet wrote under /var/run/meshlet landed in the pod's own directory.
      expect(readdirSync(path.join(pod.dir, 'var-run-meshlet')).sort()).toEqual(expect.arrayContaining(['envoy.json', 'xds.sock']));
    }
    // Nothing of it on the host.
    expect(listRunDir()).toEqual(hostRunDir);
  });

  it('HTTPS to web:8080 works without a client certificate, and the page comes through both egress routes', async () => {
    const r = await lab.http(outside, web.v4, 8080, '/', { tls: { ca: path.join(lab.root, 'pki', 'mesh-ca.pem'), servername: 'web-svc' } });
    expect(r.status, JSON.stringify(r)).toBe(200);
    expect(r.tls).toMatchObject({ authorized: true, peerSans: 'DNS:web-svc' });
    expect(r.body).toContain('emoji   http://127.137.0.1:8081/emoji -> 200 {"service":"emoji"');
    expect(r.body).toContain('voting  http://127.137.0.2:8081/leaderboard -> 200 {"service":"voting"');
    // web's app called emoji through web's Envoy: emoji's app saw Envoy's hop, not web's address.
    await emoji.app!.waitFor((e) => e.ev === 'request' && e.path === '/emoji' && e.peer === '127.0.0.6');
  });

  it('inside a pod, a request to emoji fails without a client certificate and succeeds with the mesh certificate and key', async () => {
    const ca = path.join(web.certDir, 'mesh-ca.pem');
    const mark = marker('contrast');
    const without = await lab.http(web, 'emoji-svc', 8080, `/no-cert/${mark}`, { tls: { ca, servername: 'emoji-svc' } });
    expect(without.status).toBeUndefined();
    expect(without.error).toMatch(/certificate required/);
    // The pod's own /contrast/tls-config files (web's certificate chain and key).
    const withCert = await lab.http(web, 'emoji-svc', 8080, `/with-cert/${mark}`, {
      tls: { ca, cert: path.join(web.certDir, 'certChain.pem'), key: path.join(web.certDir, 'key.pem'), servername: 'emoji-svc' },
    });
    expect(withCert.status, JSON.stringify(withCert)).toBe(200);
    expect(withCert.tls).toMatchObject({ authorized: true, peerSans: 'DNS:emoji-svc' });
    expect(JSON.parse(withCert.body ?? '{}')).toMatchObject({ service: 'emoji', path: `/with-cert/${mark}` });
    expect(emoji.app!.events.some((e) => e.ev === 'data' && e.head.includes(`/no-cert/${mark}`))).toBe(false);
  });

  it('CONTRAST_ADMIN_PORT serves the read-only metrics port; without the admin exception it needs a mesh certificate from outside', async () => {
    const inside = await lab.http(web, '127.0.0.1', 9901, '/ready');
    expect(inside.status).toBe(200);
    expect(inside.body).toBe('ready\n');
    // Envoy's own admin is only on its Unix socket: 9901 is meshlet's read-only listener, which has no config dump.
    expect(await lab.envoyAdmin(web, '/ready')).toContain('LIVE');
    const dump = await lab.http(web, '127.0.0.1', 9901, '/config_dump', { timeoutMs: 2_000 });
    expect(dump.status).toBe(404);
    expect(dump.body ?? '').not.toContain('configs');
    // web's ingress value has no admin#9901#true, so 9901 is an unlisted port: mTLS, as in Contrast.
    const plain = await lab.http(outside, web.v4, 9901, '/ready', { timeoutMs: 2_000 });
    expect(plain.status).toBeUndefined();
  });
});
