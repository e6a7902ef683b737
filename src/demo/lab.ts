// The mesh lab: pods as network namespaces on one bridge, each running an
// app, `meshlet init`, and `meshlet run` with a real Envoy as uid 1337.
// Used by `npm run demo` and the end-to-end suite (test/e2e).
//
//   hub namespace: bridge "br0"  ── v-<name> ══ eth0 ── pod / host namespace
//   pods  198.18.0.11, .12, …   2001:db8::11, ::12, …  (in spec order)
//   hosts 198.18.0.100, .101, … 2001:db8::100, …       (no meshlet)
//
// Every namespace gets the same /etc/hosts (`<service>` → its addresses) and
// its own resolv.conf, through /etc/netns/<ns>/ (bind-mounted by `ip netns
// exec`, so meshlet, Envoy's c-ares resolver and the apps all see them).
// Each pod has a 0755 directory (so uid 1337 can reach the socket and the
// bootstrap) with its certificates from the lab's one mesh CA, its config,
// the xDS socket and the bootstrap. close() undoes everything, and an exit
// hook does it for a run that dies half-way.
import { stringify } from 'yaml';
import { createPki, type Leaf, type Pki } from '../devpki/pki.js';
import { findEnvoy } from '../envoy/binary.js';
import { adminGet } from '../envoy/admin.js';
import { adminSocketPath } from '../config/constants.js';
import { Capture } from './capture.js';
import { App, type Host, type HostSpec, type Member, type Pod, type PodSpec } from './members.js';
import { labUnavailable, Namespaces } from './netns.js';
import type { ProbeRequest, ProbeResult, RepeatOptions } from './probe.js';
import { asUid, tail, type Result } from './proc.js';
const { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } = process.getBuiltinModule('node:fs');
const { tmpdir } = process.getBuiltinModule('node:os');
const path = process.getBuiltinModule('node:path');
const { fileURLToPath } = process.getBuiltinModule('node:url');

export * from './members.js';
export { Capture } from './capture.js';
export type { WireReport } from './capture.js';
export type { ProbeRequest, ProbeResult, RepeatOptions } from './probe.js';
export { labUnavailable } from './netns.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/**
 * The app, probe and DNS responder always run compiled, from dist/src/demo,
 * whether this module runs from dist (the demo) or from the sources (vitest).
 */
const DIST_DEMO = HERE.split(path.sep).includes('dist') ? HERE : path.resolve(HERE, '..', '..', 'dist', 'src', 'demo');
/** dist/src/cli.js. */
export const CLI = path.resolve(DIST_DEMO, '..', 'cli.js');
const PROXY_UID = 1337;
/** Contrast's fixed paths, which a Contrast pod gets through its private mounts. */
const CONTRAST_CERTS = '/contrast/tls-config';
const MESHLET_RUN = '/var/run/meshlet';

export interface LabSpec {
  pods: PodSpec[];
  hosts?: HostSpec[];
  /** Progress messages (the demo prints some of them). */
  log?: (msg: string) => void;
}

export interface ClientFiles {
  ca: string;
  cert: string;
  key: string;
}

export class MeshLab {
  readonly pods = new Map<string, Pod>();
  readonly hosts = new Map<string, Host>();
  private captures = 0;
  private readonly mountpoints: string[] = [];
  private closed = false;

  private constructor(
    readonly ns: Namespaces,
    readonly root: string,
    readonly pki: Pki,
    readonly hub: string,
    readonly envoyPath: string,
    private readonly log: (msg: string) => void,
    private readonly removeRoot: () => void,
  ) {}

  /** Builds the topology, writes certificates and configs, starts apps and DNS; meshlet is not started yet. */
  static async create(spec: LabSpec): Promise<MeshLab> {
    const why = labUnavailable();
    if (why) throw new Error(why);
    for (const f of [CLI, ...['app.js', 'probe.js', 'dns.js'].map((x) => path.join(DIST_DEMO, x))]) {
      if (!existsSync(f)) throw new Error(`${f} is missing; run npm run build first`);
    }
    const envoyPath = findEnvoy();
    const root = mkdtempSync(path.join(tmpdir(), 'meshlet-lab-'));
    chmodSync(root, 0o755);
    const ns = new Namespaces();
    const removeRoot = (): void => rmSync(root, { recursive: true, force: true });
    process.on('exit', removeRoot);
    let lab: MeshLab | undefined;
    try {
      const pki = await createPki(path.join(root, 'pki'), { name: 'meshlet-lab' });
      const hub = await ns.add('hub');
      await ns.bridge(hub, 'br0');
      lab = new MeshLab(ns, root, pki, hub, envoyPath, spec.log ?? (() => undefined), removeRoot);
      // A copy of the probe in a 0755 directory, so any uid can run it.
      copyFileSync(path.join(DIST_DEMO, 'probe.js'), path.join(root, 'probe.js'));
      await lab.build(spec);
      return lab;
    } catch (err) {
      if (lab) await lab.close();
      else {
        await ns.cleanup();
        removeRoot();
      }
      throw err;
    }
  }

  private async build(spec: LabSpec): Promise<void> {
    const hosts = spec.hosts ?? [];
    const addr = (i: number): { v4: string; v6: string } => ({ v4: `198.18.0.${i}`, v6: `2001:db8::${i}` });
    const names = ['hub', ...spec.pods.map((p) => p.name), ...hosts.map((h) => h.name)];
    const devs = names.map((n) => `v-${n}`.slice(0, 15));
    if (new Set(devs).size !== names.length)
      throw new Error(`lab member names must be unique in their first 13 characters and not "hub": ${names.slice(1).join(', ')}`);
    const etcHosts = [
      '127.0.0.1 localhost',
      '::1 localhost ip6-localhost',
      ...spec.pods.map((p, i) => `${addr(11 + i).v4} ${p.service ?? `${p.name}-svc`}`),
      ...hosts.map((h, i) => `${addr(100 + i).v4} ${h.name}`),
      ...spec.pods.map((p, i) => `${addr(11 + i).v6} ${p.service ?? `${p.name}-svc`}`),
      ...hosts.map((h, i) => `${addr(100 + i).v6} ${h.name}`),
    ].join('\n');
    // Built in parallel, listed in spec order.
    const [pods, hostList] = await Promise.all([
      Promise.all(spec.pods.map((p, i) => this.addPod(p, addr(11 + i), etcHosts))),
      Promise.all(hosts.map((h, i) => this.addHost(h, addr(100 + i), etcHosts))),
    ]);
    for (const p of pods) this.pods.set(p.name, p);
    for (const h of hostList) this.hosts.set(h.name, h);
  }

  /** Namespace, veth to the bridge, addresses and hosts/resolv.conf. */
  private async member(name: string, a: { v4: string; v6: string }, etcHosts: string, nameserver: string): Promise<Member> {
    const ns = await this.ns.add(name, { hosts: `${etcHosts}\n`, 'resolv.conf': `nameserver ${nameserver}\noptions timeout:1 attempts:1\n` });
    const hubDev = `v-${name}`.slice(0, 15);
    await this.ns.veth(this.hub, hubDev, ns, 'eth0');
    await this.ns.attach(this.hub, hubDev, 'br0');
    await this.ns.up(this.hub, hubDev);
    await this.ns.addr(ns, 'eth0', `${a.v4}/24`);
    await this.ns.addr(ns, 'eth0', `${a.v6}/64`);
    await this.ns.up(ns, 'eth0');
    return { name, ns, ...a, hubDev };
  }

  private async addPod(spec: PodSpec, a: { v4: string; v6: string }, etcHosts: string): Promise<Pod> {
    const m = await this.member(spec.name, a, etcHosts, spec.nameserver ?? '127.0.0.1');
    const service = spec.service ?? `${spec.name}-svc`;
    const dir = path.join(this.root, spec.name);
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const leaf = await this.pki.issueLeaf({ sans: [service] });
    const certDir = path.join(dir, 'certs');
    await this.pki.writeContrastDir(certDir, leaf);
    chmodSync(certDir, 0o755);
    // The host path of Envoy's admin socket: a Contrast pod's runtime directory is bind-mounted on /var/run/meshlet.
    const adminSocket = adminSocketPath(spec.contrastEnv ? path.join(dir, 'var-run-meshlet', 'xds.sock') : `${dir}/run/xds.sock`);
    const pod: Pod = { ...m, kind: 'pod', spec, service, dir, certDir, leaf, adminSocket };
    if (spec.contrastEnv) mkdirSync(path.join(dir, 'var-run-meshlet'), { mode: 0o755 });
    else {
      pod.configPath = path.join(dir, 'config.yaml');
      const config = {
        certs: { ca: `${certDir}/mesh-ca.pem`, certChain: `${certDir}/certChain.pem`, key: `${certDir}/key.pem` },
        ...spec.config,
        proxy: { ...(spec.config?.['proxy'] as object | undefined), xdsSocket: `${dir}/run/xds.sock`, bootstrapPath: `${dir}/run/envoy.json` },
      };
      writeFileSync(pod.configPath, stringify(config));
    }
    if (spec.app) pod.app = await this.startApp(m, spec.app);
    return pod;
  }

  private async addHost(spec: HostSpec, a: { v4: string; v6: string }, etcHosts: string): Promise<Host> {
    const m = await this.member(spec.name, a, etcHosts, '127.0.0.1');
    const host: Host = { ...m, kind: 'host', spec };
    if (spec.app) host.app = await this.startApp(m, spec.app);
    if (spec.dns) {
      host.dns = this.ns.spawn(m.ns, `dns in ${spec.name}`, [process.execPath, path.join(DIST_DEMO, 'dns.js'), JSON.stringify({ records: spec.dns })]);
      await host.dns.waitFor((l) => l.includes('"listening"'), 10_000, 'the DNS responder listening');
    }
    return host;
  }

  private async startApp(m: Member, app: PodSpec['app'] & object): Promise<App> {
    const proc = this.ns.spawn(m.ns, `app ${m.name}`, [process.execPath, path.join(DIST_DEMO, 'app.js'), JSON.stringify({ name: m.name, ...app })]);
    const handle = new App(proc);
    for (const port of app.ports) await handle.waitFor((e) => e.ev === 'listening' && e.port === port, 10_000, `app ${m.name} listening on ${port}`);
    return handle;
  }

  pod(name: string): Pod {
    const p = this.pods.get(name);
    if (!p) throw new Error(`no pod ${name}`);
    return p;
  }

  host(name: string): Host {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  /**
   * The argv and environment of a meshlet command in this pod. A config-file
   * pod gets --config. A Contrast pod gets only its CONTRAST_* variables, so
   * meshlet uses Contrast's fixed paths, which must be per pod as a pod's
   * volumes make them: the command runs in a private mount namespace (inside
   * the one `ip netns exec` already made, so nothing propagates to the host)
   * with the pod's own directories bind-mounted on /var/run/meshlet (shared
   * by init, run and wait-ready, like an emptyDir) and /contrast/tls-config.
   */
  private meshletCmd(pod: Pod, cmd: string[]): { argv: string[]; env: NodeJS.ProcessEnv } {
    const env: NodeJS.ProcessEnv = { ...process.env, MESHLET_LOG_LEVEL: process.env['MESHLET_LOG_LEVEL'] ?? 'info' };
    for (const k of Object.keys(env)) if (/^(CONTRAST|EDG)_/.test(k)) delete env[k];
    const meshlet = [process.execPath, CLI, ...cmd];
    if (!pod.spec.contrastEnv) return { argv: [...meshlet, '--config', pod.configPath ?? ''], env };
    this.ensureMountpoint(MESHLET_RUN);
    this.ensureMountpoint(CONTRAST_CERTS);
    const script = `set -e; mount --bind "$1" ${MESHLET_RUN}; mount --bind "$2" ${CONTRAST_CERTS}; shift 2; exec "$@"`;
    return {
      argv: ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', path.join(pod.dir, 'var-run-meshlet'), pod.certDir, ...meshlet],
      env: { ...env, ...pod.spec.contrastEnv },
    };
  }

  /** `meshlet init` in the pod: the iptables rules. Throws with meshlet's message on failure. */
  async init(pod: Pod): Promise<void> {
    const { argv, env } = this.meshletCmd(pod, ['init']);
    await this.ns.must(pod.ns, argv, { env, timeoutMs: 60_000 });
  }

  /** Creates a mount point (and missing parents) on the host; close() removes what it created. */
  private ensureMountpoint(dir: string): void {
    let cur = '';
    for (const part of dir.split('/').filter(Boolean)) {
      cur += `/${part}`;
      try {
        mkdirSync(cur, { mode: 0o755 });
        this.mountpoints.push(cur);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }

  /** Starts `meshlet run` in the pod (Envoy included). */
  run(pod: Pod): void {
    const { argv, env } = this.meshletCmd(pod, ['run', '--drain-seconds', '0', '--envoy', this.envoyPath]);
    pod.meshlet = this.ns.spawn(pod.ns, `meshlet ${pod.name}`, argv, { env });
  }

  /** `meshlet wait-ready` in the pod; resolves with its result (code 0 = ready). */
  async waitReadyResult(pod: Pod, timeoutS = 30): Promise<Result> {
    const { argv, env } = this.meshletCmd(pod, ['wait-ready', '--timeout', String(timeoutS)]);
    return this.ns.exec(pod.ns, argv, { env, timeoutMs: (timeoutS + 10) * 1000 });
  }

  async waitReady(pod: Pod, timeoutS = 30): Promise<void> {
    const r = await this.waitReadyResult(pod, timeoutS);
    if (r.code !== 0) throw new Error(`pod ${pod.name} not ready: ${r.stderr.trim()}\nmeshlet output:\n${tail(pod.meshlet?.output() ?? '(not started)')}`);
  }

  /** Where a pod started with `contrastImage` writes its ready file. */
  readyFile(pod: Pod): string {
    return path.join(pod.dir, 'ready');
  }

  /**
   * Starts meshlet as the single container of Contrast's image mode and waits
   * for it to say it wrote the ready file (what the startupProbe tests for).
   */
  async startContrastImage(pod: Pod, timeoutMs = 60_000): Promise<void> {
    const { argv, env } = this.meshletCmd(pod, pod.spec.contrastImage ?? []);
    const extra = { MESHLET_READY_FILE: this.readyFile(pod), MESHLET_ENVOY: this.envoyPath, MESHLET_DRAIN_SECONDS: '0' };
    pod.meshlet = this.ns.spawn(pod.ns, `meshlet ${pod.name}`, argv, { env: { ...env, ...extra } });
    try {
      await pod.meshlet.waitFor((l) => l.includes('"msg":"ready file written"'), timeoutMs, `meshlet in ${pod.name} writing its ready file`);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nmeshlet output:\n${tail(pod.meshlet.output())}`);
    }
  }

  /** init, run and wait-ready for each pod (in parallel); resolves with each pod's time to ready. */
  async start(pods: Pod[] = [...this.pods.values()]): Promise<Map<string, number>> {
    const times = new Map<string, number>();
    await Promise.all(
      pods.map(async (p) => {
        const t0 = Date.now();
        if (p.spec.contrastImage && p.spec.contrastEnv) {
          await this.startContrastImage(p);
          times.set(p.name, Date.now() - t0);
          return;
        }
        await this.init(p);
        this.run(p);
        await this.waitReady(p);
        times.set(p.name, Date.now() - t0);
        this.log(`${p.name} ready in ${Date.now() - t0} ms`);
      }),
    );
    return times;
  }

  /** Runs the probe inside a member's namespace, as `uid` when given. */
  async probe(from: Member, req: ProbeRequest, opts: { uid?: number } = {}): Promise<ProbeResult> {
    const node = [process.execPath, path.join(this.root, 'probe.js'), JSON.stringify(req)];
    const argv = asUid(opts.uid, node);
    const r = await this.ns.exec(from.ns, argv, { timeoutMs: (req.timeoutMs ?? 5_000) + 10_000 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as ProbeResult;
    } catch {
      throw new Error(`probe in ${from.name} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    }
  }

  /**
   * Keeps probing from a member's namespace, one attempt at a time, until
   * stop() (or the bounds in `repeat`); stop() resolves with every attempt.
   */
  repeat(
    from: Member,
    req: ProbeRequest,
    repeat: RepeatOptions,
    opts: { uid?: number } = {},
  ): { stop: () => Promise<ProbeResult[]>; attempts: (n: number, match: (r: ProbeResult) => boolean, timeoutMs: number) => Promise<void> } {
    const node = [process.execPath, path.join(this.root, 'probe.js'), JSON.stringify({ ...req, repeat })];
    const argv = asUid(opts.uid, node);
    const proc = this.ns.spawn(from.ns, `probe loop in ${from.name}`, argv);
    return {
      /** Resolves once `n` finished attempts match (each attempt is one line), so a caller can wait for attempts instead of time. */
      attempts: async (n, match, timeoutMs) => {
        let seen = 0;
        await proc.waitFor(
          (l) => {
            try {
              if (match(JSON.parse(l) as ProbeResult)) seen++;
            } catch {
              // not a result line
            }
            return seen >= n;
          },
          timeoutMs,
          `${n} matching probe attempts`,
        );
      },
      stop: async () => {
        await proc.close((req.timeoutMs ?? 5_000) + 5_000);
        return proc.lines.flatMap((l) => {
          try {
            return [JSON.parse(l) as ProbeResult];
          } catch {
            return [];
          }
        });
      },
    };
  }

  /** An HTTP GET from a member's namespace (plain, or TLS with `tls`). */
  http(
    from: Member,
    host: string,
    port: number,
    pathname: string,
    extra: { tls?: Partial<ClientFiles> & { servername?: string }; timeoutMs?: number; uid?: number } = {},
  ): Promise<ProbeResult> {
    const req: ProbeRequest = {
      op: 'http',
      host,
      port,
      path: pathname,
      ...(extra.tls ? { tls: extra.tls } : {}),
      ...(extra.timeoutMs ? { timeoutMs: extra.timeoutMs } : {}),
    };
    return this.probe(from, req, extra.uid === undefined ? {} : { uid: extra.uid });
  }

  /** Makes the app in `pod` itself fetch `url` (a call from inside the pod, by the app). */
  async appFetch(pod: Pod, url: string, timeoutMs = 5_000): Promise<{ ok: boolean; status?: number; body?: string; error?: string }> {
    const port = pod.spec.app?.ports[0];
    if (port === undefined) throw new Error(`pod ${pod.name} has no app`);
    const r = await this.http(pod, '127.0.0.1', port, `/fetch?url=${encodeURIComponent(url)}&timeoutMs=${timeoutMs}`, { timeoutMs: timeoutMs + 2_000 });
    if (!r.ok || r.body === undefined) throw new Error(`app in ${pod.name} did not answer: ${r.error ?? r.received ?? ''}`);
    return JSON.parse(r.body) as { ok: boolean; status?: number; body?: string; error?: string };
  }

  /** Envoy's admin in a pod (its Unix socket, which root reaches from the host): GET `pathname`, the body. */
  async envoyAdmin(pod: Pod, pathname: string): Promise<string> {
    const r = await adminGet(pod.adminSocket, pathname, { timeoutMs: 5_000 });
    if (r.status !== 200) throw new Error(`Envoy admin in ${pod.name}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
    return r.body;
  }

  /** One Envoy counter or gauge in a pod, read from its admin socket. */
  async envoyStat(pod: Pod, name: string): Promise<number> {
    const body = await this.envoyAdmin(pod, `/stats?format=json&filter=${encodeURIComponent(`^${name.replace(/[.]/g, '\\.')}$`)}`);
    const stats = (JSON.parse(body) as { stats?: { name: string; value?: number }[] }).stats ?? [];
    const stat = stats.find((s) => s.name === name);
    // A missing stat is an error, so a misspelt name can never pass as "0".
    if (!stat) throw new Error(`Envoy in ${pod.name} has no stat ${name}`);
    return stat.value ?? 0;
  }

  /** Client certificate files (chain, key, and the CA to verify the server) in the lab directory. */
  async clientFiles(label: string, leaf: Leaf, pki: Pki = this.pki): Promise<ClientFiles> {
    const files = await pki.writeContrastDir(path.join(this.root, 'clients', label), leaf);
    return { ca: path.join(this.root, 'pki', 'mesh-ca.pem'), cert: files.certChain, key: files.key };
  }

  /** A second, unrelated CA (for "wrong CA" clients). */
  otherPki(name = 'other-ca'): Promise<Pki> {
    return createPki(path.join(this.root, name), { name });
  }

  /** Starts dumpcap on the member's link (its veth end in the hub namespace). */
  capture(m: Member): Promise<Capture> {
    mkdirSync(path.join(this.root, 'captures'), { recursive: true });
    // The sentinel goes to the subnet's broadcast address: it crosses the link with no ARP and no listener.
    const sentinel = async (payload: string): Promise<void> => {
      const r = await this.probe(m, { op: 'udp', host: '198.18.0.255', port: 9, send: payload, broadcast: true });
      if (!r.ok) throw new Error(`capture sentinel from ${m.name}: ${r.error ?? ''}`);
    };
    return Capture.start(this.ns, this.hub, m.hubDev, path.join(this.root, 'captures', `${m.name}-${this.captures++}.pcapng`), sentinel);
  }

  /** Stops meshlet (SIGTERM; it drains and stops Envoy), then everything else. Safe to call twice. */
  async close(): Promise<string[]> {
    if (this.closed) return [];
    this.closed = true;
    await Promise.all([...this.pods.values()].map((p) => p.meshlet?.stop('SIGTERM', 5_000) ?? Promise.resolve()));
    const errors = await this.ns.cleanup();
    for (const d of this.mountpoints.splice(0).reverse()) {
      try {
        rmdirSync(d);
      } catch (err) {
        errors.push(`rmdir ${d}: ${(err as Error).message}`);
      }
    }
    this.removeRoot();
    process.off('exit', this.removeRoot);
    return errors;
  }
}

export const PROXY = { uid: PROXY_UID } as const;
