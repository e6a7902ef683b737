// Envoy belongs to meshlet, in network namespaces with a real pod (app,
// `meshlet init`, `meshlet run` as root, Envoy as uid 1337) and an outside
// client: the app's uid cannot reach Envoy's admin by any path, a drain shows
// on /ready, Envoy never outlives meshlet, and a stale Envoy is ended.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailable, MeshLab, type ClientFiles, type Host, type Pod } from '../../src/demo/lab.js';
import { adminGet } from '../../src/envoy/admin.js';
import { findStaleEnvoys, netnsId } from '../../src/envoy/stale.js';
import { marker, startOrClose } from './support.js';
import { procGone } from '../helpers/wait.js';
import { asUid } from '../../src/demo/proc.js';

const skip = labUnavailable();
const APP_UID = 1000;
const PROXY_UID = 1337;
const DEBUG_PORT = 15020;

/** Runs as `uid` in the pod: sends each admin request over the socket and to each TCP port; one JSON line. */
const ATTACK = `
const http = require('node:http');
const [sock, ports, method, paths] = [process.argv[1], JSON.parse(process.argv[2]), process.argv[3], JSON.parse(process.argv[4])];
const one = (o) => new Promise((resolve) => {
  const q = http.request({ ...o, method, timeout: 2000 }, (res) => {
    let b = '';
    res.on('data', (d) => (b += d));
    res.on('end', () => resolve({ status: res.statusCode, body: b.slice(0, 200) }));
  });
  q.on('timeout', () => q.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  q.on('error', (e) => resolve({ error: e.code || e.message }));
  q.end();
});
(async () => {
  const out = {};
  for (const p of paths) {
    out['unix ' + p] = await one({ socketPath: sock, path: p });
    for (const port of ports) out['tcp ' + port + ' ' + p] = await one({ host: '127.0.0.1', port, path: p });
  }
  console.log(JSON.stringify(out));
})();
`;

type Outcome = { status?: number; body?: string; error?: string };

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(skip !== undefined)('Envoy belongs to meshlet (network namespaces)', () => {
  let lab: MeshLab;
  let web: Pod;
  let outside: Host;
  let client: ClientFiles;

  beforeAll(async () => {
    lab = await MeshLab.create({
      pods: [{ name: 'web', app: { ports: [8080] }, config: { ingress: { ports: [{ name: 'web', port: 8080, policy: 'tls' }] } } }],
      hosts: [{ name: 'outside' }],
    });
    await startOrClose(lab);
    web = lab.pod('web');
    outside = lab.host('outside');
    client = await lab.clientFiles('outside', await lab.pki.issueLeaf({ sans: ['outside'] }));
  }, 90_000);

  afterAll(async () => {
    expect((await lab?.close()) ?? []).toEqual([]);
  }, 60_000);

  const bootstrap = (): string => `${web.dir}/run/envoy.json`;

  /** The pid of the Envoy the current meshlet started last. */
  function envoyPid(): number {
    const all = [...(web.meshlet?.output() ?? '').matchAll(/"pid":(\d+),"restarts":\d+,(?:"startedBy":"launcher",)?"msg":"envoy started"/g)];
    const pid = Number(all.at(-1)?.[1]);
    if (!(pid > 0)) throw new Error(`no "envoy started" line in meshlet's output:\n${web.meshlet?.output() ?? ''}`);
    return pid;
  }

  /** The outside client's request through Envoy's inbound TLS port; the app echoes the path. */
  async function throughEnvoy(): Promise<{ ok: boolean; detail: string }> {
    const path = `/${marker('own')}`;
    const r = await lab.http(outside, web.v4, 8080, path, { tls: { ca: client.ca, servername: 'web-svc' }, timeoutMs: 3_000 });
    return { ok: r.status === 200 && (r.body ?? '').includes(path), detail: JSON.stringify(r) };
  }

  async function ready(): Promise<{ status?: number; body: string }> {
    const r = await lab.http(web, '127.0.0.1', DEBUG_PORT, '/ready', { timeoutMs: 6_000 });
    return { ...(r.status !== undefined ? { status: r.status } : {}), body: r.body ?? r.error ?? '' };
  }

  /** TCP ports Envoy (this pid) listens on in the pod. */
  async function envoyTcpPorts(pid: number): Promise<number[]> {
    const r = await lab.ns.exec(web.ns, ['ss', '-ltnpH']);
    const ports = r.stdout
      .split('\n')
      .filter((l) => l.includes(`pid=${pid},`))
      .map((l) => Number(/:(\d+)\s/.exec(l.split(/\s+/).slice(3).join(' ') + ' ')?.[1]));
    return [...new Set(ports)].sort((a, b) => a - b);
  }

  async function attack(uid: number, method: 'GET' | 'POST', paths: string[], ports: number[]): Promise<Record<string, Outcome>> {
    const argv = asUid(uid, [process.execPath, '-e', ATTACK, web.adminSocket, JSON.stringify(ports), method, JSON.stringify(paths)]);
    const r = await lab.ns.exec(web.ns, argv, { timeoutMs: 60_000 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as Record<string, Outcome>;
    } catch {
      throw new Error(`attack as uid ${uid} exited ${r.code}: ${r.stderr || r.stdout}`);
    }
  }

  it("the app's uid reaches Envoy's admin by no path: no TCP admin port, the socket refuses it; Envoy is unaffected", async () => {
    const pid = envoyPid();
    expect((await throughEnvoy()).ok).toBe(true);
    // Envoy listens on TCP only for the mesh (this pod has no egress: the inbound port alone), no admin port.
    const ports = await envoyTcpPorts(pid);
    expect(ports).toEqual([15006]);
    // The former admin port and Contrast's usual one, plus every port Envoy has.
    const targets = [15000, 9901, ...ports];
    const out = await attack(APP_UID, 'POST', ['/quitquitquit', '/drain_listeners?inboundonly'], targets);
    expect(out['unix /quitquitquit']).toEqual({ error: 'EACCES' });
    expect(out['unix /drain_listeners?inboundonly']).toEqual({ error: 'EACCES' });
    for (const [k, v] of Object.entries(out)) expect(v.body ?? '', k).not.toMatch(/^OK/);
    // The socket is the proxy uid's: it (Envoy itself) can read admin; the refusal above is by uid.
    const asProxy = await attack(PROXY_UID, 'GET', ['/server_info'], []);
    expect(asProxy['unix /server_info']?.status).toBe(200);
    expect(asProxy['unix /server_info']?.body).toContain('"state": "LIVE"');

    // Envoy unaffected: same process, no listener stopped, traffic flows, /ready 200.
    expect(procGone(pid)).toBe(false);
    expect(envoyPid()).toBe(pid);
    expect(await lab.envoyStat(web, 'listener_manager.listener_stopped')).toBe(0);
    expect(await throughEnvoy()).toMatchObject({ ok: true });
    expect((await ready()).status).toBe(200);
  });

  it('/ready turns 503 once root drains the inbound listener through the socket', async () => {
    expect((await ready()).status).toBe(200);
    const r = await adminGet(web.adminSocket, '/drain_listeners?inboundonly', { method: 'POST', ownerUid: PROXY_UID });
    expect(r.status).toBe(200);
    const after = await until('/ready to answer 503 after the drain', async () => {
      const x = await ready();
      return x.status === 503 ? x : undefined;
    });
    expect(after.body).toMatch(/Envoy stopped 1 listener/);
    // And /ready told the truth: the inbound port no longer serves.
    expect((await throughEnvoy()).ok).toBe(false);
  });

  it('after kill -9 of meshlet no Envoy remains; a restarted meshlet serves again without crash-looping', async () => {
    const pid = envoyPid();
    const meshlet = web.meshlet!;
    expect(meshlet.pid).toBeGreaterThan(0);
    process.kill(meshlet.pid!, 'SIGKILL');
    // Not meshlet.exited: an orphaned Envoy would hold meshlet's output pipe open.
    await until(`meshlet ${meshlet.pid} to die`, () => (procGone(meshlet.pid!) ? true : undefined), 10_000);
    await until(`Envoy ${pid} to die with meshlet (parent-death signal)`, () => (procGone(pid) ? true : undefined), 10_000);
    expect(findStaleEnvoys(bootstrap(), PROXY_UID, '/proc', netnsId(`/run/netns/${web.ns}`))).toEqual([]);
    expect((await throughEnvoy()).ok).toBe(false);

    lab.run(web);
    await lab.waitReady(web);
    expect(envoyPid()).not.toBe(pid);
    expect(await throughEnvoy()).toMatchObject({ ok: true });
    expect(web.meshlet?.output()).not.toMatch(/envoy exited; restarting/);
  });

  it('a restarted meshlet ends a stale Envoy of its own first; look-alikes of other uids or paths survive', async () => {
    await web.meshlet!.stop('SIGTERM', 10_000);
    // An Envoy without the parent-death signal on our bootstrap, as uid 1337 (what an older meshlet left behind).
    const stale = lab.ns.spawn(web.ns, 'stale envoy', [
      'setpriv',
      `--reuid=${PROXY_UID}`,
      `--regid=${PROXY_UID}`,
      '--clear-groups',
      '--inh-caps=-all,+net_admin',
      '--ambient-caps=-all,+net_admin',
      '--bounding-set=-all,+net_admin',
      '--',
      lab.envoyPath,
      '-c',
      bootstrap(),
      '--disable-hot-restart',
      '--log-level',
      'error',
    ]);
    // It holds the admin socket (the address a new Envoy must take over).
    await until('the stale Envoy answering on the admin socket', async () =>
      (await adminGet(web.adminSocket, '/server_info').catch(() => undefined))?.status === 200 ? true : undefined,
    );
    const idle = ['-e', 'setTimeout(() => {}, 120000)', '--'];
    const decoys = [
      lab.ns.spawn(web.ns, 'decoy uid 1000', asUid(APP_UID, [process.execPath, ...idle, '-c', bootstrap()])),
      lab.ns.spawn(web.ns, 'decoy root', [process.execPath, ...idle, '-c', bootstrap()]),
      lab.ns.spawn(web.ns, 'decoy 1337, other path', asUid(PROXY_UID, [process.execPath, ...idle, '-c', `${bootstrap()}.other`])),
    ];
    await until('decoys running', () =>
      decoys.every((d) => d.pid !== undefined && readFileSync(`/proc/${d.pid}/cmdline`, 'utf8').includes(bootstrap())) ? true : undefined,
    );
    expect(findStaleEnvoys(bootstrap(), PROXY_UID, '/proc', netnsId(`/run/netns/${web.ns}`)).map((p) => p.pid)).toEqual([stale.pid]);
    // From another network namespace (another pod sharing the pid namespace) it is not ours to end.
    expect(findStaleEnvoys(bootstrap(), PROXY_UID)).toEqual([]);

    lab.run(web);
    await lab.waitReady(web);
    expect(web.meshlet?.output()).toMatch(/ending a stale Envoy left by an earlier meshlet/);
    expect(procGone(stale.pid!)).toBe(true);
    for (const d of decoys) expect(procGone(d.pid!), d.label).toBe(false);
    expect(web.meshlet?.output()).not.toMatch(/envoy exited; restarting/);
    expect(await throughEnvoy()).toMatchObject({ ok: true });
    for (const d of decoys) await d.stop('SIGKILL', 2_000);
  });
});
