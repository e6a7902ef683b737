// The Kubernetes manifests in deploy/kubernetes/: valid against the Kubernetes
// API (schema and field names), shaped the way the security model needs, and
// carrying a meshlet config that meshlet itself accepts.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import { validateConfig } from '../../src/config/validate.js';
import { loadConfig } from '../../src/config/load.js';
import { parsePublicKey } from '../../src/config/trust.js';
import type { MeshConfig } from '../../src/config/model.js';
import { schemaErrors, unknownFields } from './k8s-schema.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DIR = path.join(ROOT, 'deploy/kubernetes');
const MANIFESTS = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .sort();

interface Doc {
  file: string;
  obj: { apiVersion?: string; kind?: string; metadata?: { name?: string } };
}

const docs: Doc[] = MANIFESTS.flatMap((file) =>
  parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8')).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return { file, obj: d.toJS() as Doc['obj'] };
  }),
);

function only<T>(kind: string): T {
  const found = docs.filter((d) => d.obj.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0]!.obj as T;
}

const deployment = only<IDeployment>('Deployment');
const configMap = only<IConfigMap>('ConfigMap');
const pod = deployment.spec!.template.spec!;
const initContainers = pod.initContainers ?? [];

function container(name: string): IContainer {
  const c = [...initContainers, ...pod.containers].find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name}`);
  return c;
}
const init = container('meshlet-init');
const sidecar = container('meshlet');

function volume(name: string): IVolume {
  const v = (pod.volumes ?? []).find((x) => x.name === name);
  if (!v) throw new Error(`no volume ${name}`);
  return v;
}

function mountOf(c: IContainer, mountPath: string) {
  return (c.volumeMounts ?? []).find((m) => m.mountPath === mountPath);
}

/** The value after a flag in a container's args. */
function flag(c: IContainer, name: string): string | undefined {
  const args = c.args ?? [];
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

const configText = configMap.data?.['config.yaml'] ?? '';
const validated = validateConfig(parse(configText) as unknown);
const meshConfig: MeshConfig | undefined = validated.ok ? validated.config : undefined;

describe('deploy/kubernetes against the Kubernetes API', () => {
  it('holds a Deployment and a ConfigMap, and kustomization.yaml lists every manifest', () => {
    expect(docs.map((d) => `${d.obj.apiVersion} ${d.obj.kind}`).sort()).toEqual(['apps/v1 Deployment', 'v1 ConfigMap']);
    const kustomization = parse(readFileSync(path.join(DIR, 'kustomization.yaml'), 'utf8')) as { resources?: string[] };
    expect([...(kustomization.resources ?? [])].sort()).toEqual(MANIFESTS);
  });

  it.each(docs.map((d) => [`${d.file}: ${d.obj.kind}/${d.obj.metadata?.name}`, d] as const))('%s passes the API schema', (_name, d) => {
    expect(schemaErrors(d.obj)).toEqual([]);
  });

  it.each(docs.map((d) => [`${d.file}: ${d.obj.kind}/${d.obj.metadata?.name}`, d] as const))('%s has no field the API does not know', (_name, d) => {
    expect(unknownFields(d.obj)).toEqual([]);
  });

  it('the checks catch real mistakes (they are not no-ops)', () => {
    const bad = structuredClone(deployment) as unknown as {
      spec: { template: { spec: { initContainers: Record<string, unknown>[]; containers: Record<string, unknown>[] } } };
    };
    const side = bad.spec.template.spec.initContainers[1]!;
    side['restartpolicy'] = 'Always';
    (side['securityContext'] as Record<string, unknown>)['capabilites'] = { add: ['NET_ADMIN'] };
    (side['startupProbe'] as Record<string, unknown>)['periodSeconds'] = '1';
    (side['resources'] as Record<string, Record<string, unknown>>)['limits']!['memory'] = 'lots';
    delete bad.spec.template.spec.containers[0]!['name'];
    expect(unknownFields(bad).sort()).toEqual([
      'spec.template.spec.initContainers[1].restartpolicy: unknown field (not in IContainer)',
      'spec.template.spec.initContainers[1].securityContext.capabilites: unknown field (not in ISecurityContext)',
    ]);
    const errors = schemaErrors(bad).join('\n');
    expect(errors).toContain('initContainers/1/startupProbe/periodSeconds must be integer');
    expect(errors).toContain('initContainers/1/resources/limits/memory must match format "quantity"');
    expect(errors).toContain('containers/0 must have required property name');
  });
});

describe('the pod shape', () => {
  it('runs meshlet init before the sidecar, both before the app', () => {
    expect(initContainers.map((c) => c.name)).toEqual(['meshlet-init', 'meshlet']);
    expect(pod.containers.map((c) => c.name)).not.toContain('meshlet');
    expect(init.args?.[0]).toBe('init');
    expect(sidecar.args?.[0]).toBe('run');
    expect(init.image).toBe(sidecar.image);
  });

  it('meshlet init gets exactly NET_ADMIN and nothing else', () => {
    const sc = init.securityContext!;
    expect(sc.capabilities?.drop).toEqual(['ALL']);
    expect(sc.capabilities?.add).toEqual(['NET_ADMIN']);
    expect(sc.privileged ?? false).toBe(false);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(init.restartPolicy).toBeUndefined(); // a plain init container: runs once, to completion
    expect(init.startupProbe).toBeUndefined();
  });

  it('the sidecar is a native sidecar whose startupProbe execs meshlet wait-ready', () => {
    expect(sidecar.restartPolicy).toBe('Always');
    const probe = sidecar.startupProbe!;
    const command = probe.exec?.command ?? [];
    expect(command.slice(0, 2)).toEqual(['meshlet', 'wait-ready']);
    expect(probe.httpGet).toBeUndefined(); // /ready is on loopback; kubelet's HTTP probes come from outside
    // The command gives up before the kubelet's timeout, so a failure reads as "not ready", not "timed out".
    const i = command.indexOf('--timeout');
    expect(i).toBeGreaterThan(0);
    expect(Number(command[i + 1])).toBeLessThan(probe.timeoutSeconds ?? 1);
    // wait-ready finds /ready through the same config file the sidecar runs with.
    expect(command[command.indexOf('--config') + 1]).toBe(flag(sidecar, '--config'));
    expect((probe.periodSeconds ?? 10) * (probe.failureThreshold ?? 3)).toBeGreaterThanOrEqual(60);
  });

  it('a readinessProbe on /ready takes a pod whose rules are disturbed out of its Service within seconds; no livenessProbe', () => {
    const probe = sidecar.readinessProbe!;
    // An httpGet on the read-only metrics listener (no Node process per probe): /ready there is the same check as on loopback.
    expect(probe.exec).toBeUndefined();
    expect(probe.httpGet?.path).toBe('/ready');
    const port = (sidecar.ports ?? []).find((p) => p.name === probe.httpGet?.port);
    expect(port?.containerPort, 'the probe names a declared port').toBeDefined();
    expect(port?.containerPort).toBe(meshConfig?.metrics?.port);
    // The metrics port must be plaintext from outside, or the kubelet (no mesh certificate) could not reach it.
    expect(meshConfig?.ingress.ports.find((p) => p.port === meshConfig.metrics?.port)?.policy).toBe('plaintext');
    // The first 503 fails it, and the next period passes again once ready.
    expect(probe.failureThreshold).toBe(1);
    // meshlet notices a change within 1 s (its positive cache); the kubelet within one period.
    expect(probe.periodSeconds ?? 10).toBeLessThanOrEqual(2);
    expect(probe.timeoutSeconds ?? 1).toBeGreaterThan(0);
    // A restart of the sidecar would not re-run meshlet-init, so it could not bring the rules back: no liveness on /ready.
    expect(sidecar.livenessProbe).toBeUndefined();
  });

  it('the sidecar runs with the fewest privileges it can: Envoy non-root with NET_ADMIN only, no escalation', () => {
    const sc = sidecar.securityContext!;
    expect(sc.privileged ?? false).toBe(false);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.capabilities?.drop).toEqual(['ALL']);
    // NET_ADMIN for Envoy's transparent listeners; the rest only so that
    // meshlet (root, to read Contrast's owner-only key) can start Envoy as the
    // proxy uid with CAP_NET_ADMIN alone: SETUID/SETGID/SETPCAP for setpriv,
    // CHOWN for the xDS socket, KILL to signal Envoy, DAC_OVERRIDE to open
    // Envoy's uid-1337-only admin socket (deploy/image-check.sh runs this
    // exact set and checks Envoy's and meshlet's capabilities).
    expect([...(sc.capabilities?.add ?? [])].sort()).toEqual(['CHOWN', 'DAC_OVERRIDE', 'KILL', 'NET_ADMIN', 'SETGID', 'SETPCAP', 'SETUID']);
    expect(meshConfig?.proxy.uid).toBe(1337);
    expect(meshConfig?.proxy.gid).toBe(1337);
    // Nothing in the pod touches the host.
    for (const k of ['hostNetwork', 'hostPID', 'hostIPC'] as const) expect(pod[k] ?? false).toBe(false);
    expect(pod.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
  });

  it('the app container stays non-root and gets no capability', () => {
    for (const c of pod.containers) {
      expect(c.securityContext?.runAsNonRoot).toBe(true);
      expect(c.securityContext?.allowPrivilegeEscalation).toBe(false);
      expect(c.securityContext?.capabilities?.drop).toEqual(['ALL']);
      expect(c.securityContext?.capabilities?.add ?? []).toEqual([]);
    }
  });

  it('the sidecar has resource requests and limits', () => {
    const r = sidecar.resources!;
    for (const k of ['cpu', 'memory']) {
      expect(r.requests?.[k], `requests.${k}`).toBeDefined();
      expect(r.limits?.[k], `limits.${k}`).toBeDefined();
    }
    expect(init.resources?.limits?.['memory']).toBeDefined();
  });

  it('sizes the sidecar from bench/RESULTS.md: the request covers idle meshlet + Envoy, the limit the 1000+1000 scale peak', () => {
    const r = sidecar.resources!;
    const idle = benchMax('idle meshlet RSS (Envoy connected, ready)') + benchMax('idle Envoy RSS (for reference)');
    const scale = benchMax('meshlet peak RSS (VmHWM), cold start') + benchMax('Envoy RSS after cold start');
    expect(mebibytes(r.requests?.['memory'])).toBeGreaterThanOrEqual(idle);
    expect(mebibytes(r.limits?.['memory'])).toBeGreaterThanOrEqual(scale);
    expect(mebibytes(r.limits?.['memory'])).toBeLessThanOrEqual(scale * 1.25);
  });

  it('no Contrast service-mesh annotation is left on the pod (Contrast would add its own proxy)', () => {
    const annotations = Object.keys(deployment.spec!.template.metadata?.annotations ?? {});
    expect(annotations.filter((a) => a.startsWith('contrast.edgeless.systems/servicemesh'))).toEqual([]);
  });
});

describe('config and certificates', () => {
  it('the ConfigMap passes meshlet’s own validation', () => {
    expect(validated.ok ? [] : validated.errors).toEqual([]);
  });

  it('is mounted at /etc/meshlet in both meshlet containers, and both read it from there', () => {
    const v = volume('meshlet-config');
    expect(v.configMap?.name).toBe(configMap.metadata?.name);
    expect((v.configMap?.items ?? []).map((i) => i.key)).toEqual(['config.yaml']);
    for (const c of [init, sidecar]) {
      expect(mountOf(c, '/etc/meshlet')).toMatchObject({ name: 'meshlet-config', readOnly: true });
      expect(flag(c, '--config')).toBe('/etc/meshlet/config.yaml');
    }
  });

  it('reads the certificates where Contrast’s Initializer writes them, from an in-memory emptyDir, read-only', () => {
    const certs = meshConfig!.certs;
    expect([certs.ca, certs.certChain, certs.key]).toEqual([
      '/contrast/tls-config/mesh-ca.pem',
      '/contrast/tls-config/certChain.pem',
      '/contrast/tls-config/key.pem',
    ]);
    const mount = mountOf(sidecar, '/contrast');
    expect(mount?.readOnly).toBe(true);
    expect(volume(mount!.name).emptyDir?.medium).toBe('Memory');
    expect(mountOf(init, '/contrast')).toBeUndefined(); // init needs no keys
  });

  it('init and the sidecar share the xDS socket directory (init writes its rules fingerprint there)', () => {
    const dir = path.dirname(meshConfig!.proxy.xdsSocket);
    expect(path.dirname(meshConfig!.proxy.bootstrapPath)).toBe(dir);
    const a = mountOf(init, dir);
    const b = mountOf(sidecar, dir);
    expect(a?.name).toBeDefined();
    expect(b?.name).toBe(a?.name);
    expect(b?.readOnly ?? false).toBe(false);
    expect(volume(a!.name).emptyDir).toBeDefined();
    // With a read-only root filesystem, iptables-legacy's lock must live in a writable volume.
    for (const c of [init, sidecar]) {
      const lock = (c.env ?? []).find((e) => e.name === 'XTABLES_LOCKFILE')?.value;
      expect(lock && path.dirname(lock)).toBe(dir);
    }
  });

  it('the app dials the egress routes the ConfigMap declares', () => {
    const listens = meshConfig!.egress.routes.map((r) => `${r.listenIp}:${r.listenPort ?? ''}`);
    const values = (container('web').env ?? []).map((e) => e.value);
    for (const l of listens) expect(values).toContain(l);
  });
});

// ---- deploy/kubernetes/contrast: the variant for a Contrast cluster ---------
const CDIR = path.join(DIR, 'contrast');
const CFILES = readdirSync(CDIR)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .sort();
const cdocs: Doc[] = CFILES.flatMap((file) =>
  parseAllDocuments(readFileSync(path.join(CDIR, file), 'utf8')).map((d) => {
    if (d.errors.length > 0) throw new Error(`contrast/${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return { file, obj: d.toJS() as Doc['obj'] };
  }),
);
const cDeployment = cdocs.find((d) => d.obj.kind === 'Deployment')!.obj as IDeployment;
const cConfigMap = cdocs.find((d) => d.obj.kind === 'ConfigMap')!.obj as IConfigMap;
const cPod = cDeployment.spec!.template.spec!;
const cAll = [...(cPod.initContainers ?? []), ...cPod.containers];
const cContainer = (name: string): IContainer => cAll.find((c) => c.name === name) ?? assertNever(`no container ${name}`);
function assertNever(msg: string): never {
  throw new Error(msg);
}
const cInit = cContainer('meshlet-init');
const cSidecar = cContainer('meshlet');
const cConfigText = cConfigMap.data?.['config.yaml'] ?? '';
const cHeader = readFileSync(path.join(CDIR, 'deployment.yaml'), 'utf8').split('\napiVersion:')[0] ?? '';
const envOf = (c: IContainer, name: string) => (c.env ?? []).find((e) => e.name === name);
const mebibytes = (q: unknown): number => {
  const m = /^(\d+)(Mi|Gi)$/.exec(String(q));
  if (!m) throw new Error(`not a Mi/Gi quantity: ${String(q)}`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
};

/** The max column of a bench/RESULTS.md row. */
function benchMax(metric: string): number {
  const row = readFileSync(path.join(ROOT, 'bench/RESULTS.md'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`| ${metric} |`));
  if (!row) throw new Error(`bench/RESULTS.md has no row "${metric}"`);
  const cells = row.split('|').map((c) => c.trim());
  return Number(cells[cells.length - 2]);
}

/** Pod Security Standards level of a pod spec, for the fields these manifests use. */
function podSecurityLevel(spec: typeof cPod): 'privileged' | 'baseline' | 'restricted' {
  const BASELINE_CAPS = [
    'AUDIT_WRITE',
    'CHOWN',
    'DAC_OVERRIDE',
    'FOWNER',
    'FSETID',
    'KILL',
    'MKNOD',
    'NET_BIND_SERVICE',
    'SETFCAP',
    'SETGID',
    'SETPCAP',
    'SETUID',
    'SYS_CHROOT',
  ];
  const containers = [...(spec.initContainers ?? []), ...spec.containers];
  const privileged =
    spec.hostNetwork === true ||
    spec.hostPID === true ||
    spec.hostIPC === true ||
    (spec.volumes ?? []).some((v) => v.hostPath) ||
    containers.some((c) => c.securityContext?.privileged === true || (c.securityContext?.capabilities?.add ?? []).some((a) => !BASELINE_CAPS.includes(a)));
  if (privileged) return 'privileged';
  const restricted = containers.every(
    (c) =>
      (c.securityContext?.runAsNonRoot ?? spec.securityContext?.runAsNonRoot) === true &&
      c.securityContext?.allowPrivilegeEscalation === false &&
      (c.securityContext.capabilities?.drop ?? []).includes('ALL') &&
      (c.securityContext.capabilities?.add ?? []).every((a) => a === 'NET_BIND_SERVICE'),
  );
  return restricted && spec.securityContext?.seccompProfile?.type === 'RuntimeDefault' ? 'restricted' : 'baseline';
}

describe('deploy/kubernetes/contrast: meshlet on a Contrast cluster', () => {
  it('holds a Deployment and a ConfigMap that pass the API schema with no unknown field; kustomization lists them', () => {
    expect(cdocs.map((d) => `${d.obj.apiVersion} ${d.obj.kind}`).sort()).toEqual(['apps/v1 Deployment', 'v1 ConfigMap']);
    for (const d of cdocs) {
      expect(schemaErrors(d.obj), d.file).toEqual([]);
      expect(unknownFields(d.obj), d.file).toEqual([]);
    }
    const k = parse(readFileSync(path.join(CDIR, 'kustomization.yaml'), 'utf8')) as { resources?: string[] };
    expect([...(k.resources ?? [])].sort()).toEqual(CFILES);
  });

  it('runs under Contrast: runtimeClassName contrast-cc, no service-account token, no Contrast mesh annotations', () => {
    // Contrast injects its Initializer only for runtime classes with this prefix; `contrast generate` versions the name.
    expect(cPod.runtimeClassName).toBe('contrast-cc');
    expect(cPod.automountServiceAccountToken).toBe(false);
    const annotations = Object.keys(cDeployment.spec!.template.metadata?.annotations ?? {});
    expect(annotations.filter((a) => a.startsWith('contrast.edgeless.systems/servicemesh'))).toEqual([]);
    expect(cInit.args?.[0]).toBe('init');
    expect(cSidecar.args?.[0]).toBe('run');
    expect(cSidecar.restartPolicy).toBe('Always');
  });

  it('pins the ConfigMap by SHA-256 in env the policy covers, with a signing key and a versioned config', () => {
    const sha = createHash('sha256').update(cConfigText).digest('hex');
    for (const c of [cInit, cSidecar]) {
      const pin = envOf(c, 'MESHLET_CONFIG_SHA256');
      expect(pin?.value, `${c.name}: pin = sha256 of the ConfigMap's config.yaml`).toBe(sha);
      // A value from a ConfigMap or Secret would not be in the policy.
      for (const e of c.env ?? []) expect(e.valueFrom, `${c.name} ${e.name}`).toBeUndefined();
      expect(parsePublicKey(envOf(c, 'MESHLET_CONFIG_PUBKEY')?.value ?? '', 'MESHLET_CONFIG_PUBKEY').asymmetricKeyType).toBe('ed25519');
      expect(flag(c, '--config')).toBe('/etc/meshlet/config.yaml');
    }
    expect(cSidecar.env).toEqual(cInit.env);
    const v = validateConfig(parse(cConfigText) as unknown);
    expect(v.ok ? [] : v.errors).toEqual([]);
    expect((parse(cConfigText) as { version?: unknown }).version).toBe(1);

    // What meshlet itself does with this pod's env and file: accepts it as pinned.
    const dir = mkdtempSync(path.join(tmpdir(), 'meshlet-cm-'));
    try {
      writeFileSync(path.join(dir, 'config.yaml'), cConfigText);
      const env = Object.fromEntries((cSidecar.env ?? []).map((e) => [e.name, e.value]));
      env['MESHLET_CONFIG_STATE'] = path.join(dir, 'state.json');
      const loaded = loadConfig(path.join(dir, 'config.yaml'), env);
      expect(loaded.trust).toMatchObject({ mode: 'pinned', version: 1, reloads: 'signed-only' });
      writeFileSync(path.join(dir, 'config.yaml'), `${cConfigText}# edited\n`);
      expect(() => loadConfig(path.join(dir, 'config.yaml'), env)).toThrow(new RegExp(`pins ${sha}`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('probes /ready for startup, readiness and liveness with an exec every 10 s or more', () => {
    const debug = validateConfig(parse(cConfigText) as unknown);
    const addr = debug.ok ? `${debug.config.debug.ip}:${debug.config.debug.port}` : '';
    for (const [kind, probe] of [
      ['startup', cSidecar.startupProbe],
      ['readiness', cSidecar.readinessProbe],
      ['liveness', cSidecar.livenessProbe],
    ] as const) {
      const cmd = probe?.exec?.command ?? [];
      expect(cmd.slice(0, 2), kind).toEqual(['meshlet', 'wait-ready']);
      // No config read per probe, and the address the sidecar serves /ready on.
      expect(cmd[cmd.indexOf('--debug-address') + 1], kind).toBe(addr);
      expect(Number(cmd[cmd.indexOf('--timeout') + 1]), kind).toBeLessThan(probe?.timeoutSeconds ?? 1);
      expect(probe?.httpGet, kind).toBeUndefined(); // /ready is loopback-only
    }
    // Each exec costs a Node start (about 0.2 s CPU, 64 MiB); the steady probes stay sparse.
    expect(cSidecar.readinessProbe?.periodSeconds).toBeGreaterThanOrEqual(10);
    expect(cSidecar.livenessProbe?.periodSeconds).toBeGreaterThanOrEqual(30);
    expect((cSidecar.livenessProbe?.periodSeconds ?? 0) * (cSidecar.livenessProbe?.failureThreshold ?? 0)).toBeGreaterThanOrEqual(60);
    expect((cSidecar.startupProbe?.periodSeconds ?? 0) * (cSidecar.startupProbe?.failureThreshold ?? 0)).toBeGreaterThanOrEqual(60);
  });

  it('sizes the sidecar from the footprint benchmark, with requests equal to limits (a Contrast pod is a VM sized from its limits)', () => {
    const PROBE_PEAK_MIB = 64; // /usr/bin/time -f %M meshlet wait-ready --debug-address ... : 64-66 MiB
    const need = benchMax('idle meshlet RSS (Envoy connected, ready)') + benchMax('idle Envoy RSS (for reference)') + 2 * PROBE_PEAK_MIB;
    const r = cSidecar.resources!;
    expect(mebibytes(r.limits?.['memory'])).toBeGreaterThanOrEqual(need);
    expect(mebibytes(r.limits?.['memory'])).toBeLessThanOrEqual(need * 1.5);
    expect(r.requests?.['memory']).toBe(r.limits?.['memory']);
    expect(r.requests?.['cpu']).toBeDefined();
    expect(r.limits?.['cpu']).toBeDefined();
    for (const c of cAll) {
      expect(c.resources?.limits?.['memory'], c.name).toBeDefined();
      expect(c.resources?.requests?.['memory'], c.name).toBe(c.resources?.limits?.['memory']);
    }
  });

  it("mounts Contrast's volume in the sidecar only, read-only, whole (a subPath would be a host-side copy under Kata)", () => {
    const secrets = (cPod.volumes ?? []).find((v) => v.name === 'contrast-secrets');
    expect(secrets?.emptyDir).toBeDefined(); // contrast generate requires an emptyDir under this name
    const mounts = (c: IContainer) => (c.volumeMounts ?? []).filter((m) => m.name === 'contrast-secrets');
    expect(mounts(cInit)).toEqual([]);
    expect(mounts(cSidecar)).toEqual([{ name: 'contrast-secrets', mountPath: '/contrast', readOnly: true }]);
    const certs = validateConfig(parse(cConfigText) as unknown);
    expect(certs.ok && [certs.config.certs.ca, certs.config.certs.certChain, certs.config.certs.key].every((f) => f.startsWith('/contrast/tls-config/'))).toBe(
      true,
    );
    // The config volume is whole too: a subPath mount never sees ConfigMap updates (nor config.yaml.sig).
    for (const c of [cInit, cSidecar]) {
      const m = (c.volumeMounts ?? []).find((x) => x.name === 'meshlet-config');
      expect(m, c.name).toMatchObject({ mountPath: '/etc/meshlet', readOnly: true });
      expect(m?.subPath, c.name).toBeUndefined();
    }
    expect((cPod.volumes ?? []).find((v) => v.name === 'meshlet-config')?.configMap?.items).toBeUndefined();
  });

  it('states its Pod Security level, which matches the spec, and a reason for every added capability', () => {
    const stated = /^# Pod Security level: (\w+)\./m.exec(cHeader)?.[1];
    expect(stated).toBe(podSecurityLevel(cPod));
    const added = new Set(cAll.flatMap((c) => c.securityContext?.capabilities?.add ?? []));
    expect([...added].sort()).toEqual(['CHOWN', 'KILL', 'NET_ADMIN', 'SETGID', 'SETPCAP', 'SETUID']);
    for (const cap of added) expect(cHeader, cap).toMatch(new RegExp(`^#\\s+[A-Z_, ]*\\b${cap}\\b[A-Z_, ]*: \\S`, 'm'));
    // The checker itself is not a no-op.
    const noCaps = structuredClone(cPod);
    for (const c of [...(noCaps.initContainers ?? []), ...noCaps.containers]) {
      c.securityContext = { ...c.securityContext, runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
    }
    expect(podSecurityLevel(noCaps)).toBe('restricted');
    expect(podSecurityLevel({ ...noCaps, hostNetwork: true })).toBe('privileged');
    for (const c of [cInit, cSidecar]) {
      expect(c.securityContext?.privileged ?? false).toBe(false);
      expect(c.securityContext?.allowPrivilegeEscalation).toBe(false);
      expect(c.securityContext?.readOnlyRootFilesystem).toBe(true);
      expect(c.securityContext?.capabilities?.drop).toEqual(['ALL']);
    }
    expect(cContainer('web').securityContext?.capabilities?.add ?? []).toEqual([]);
  });
});

describe('deploy/kubernetes: kubelet probes and the scrape', () => {
  it("the app's probes go to meshlet's probe port and name configured checks; the scrape job finds the metrics port", () => {
    const app = container('web');
    expect(meshConfig?.probes).toBeDefined();
    for (const probe of [app.readinessProbe, app.livenessProbe]) {
      const get = probe?.httpGet;
      expect(Number(get?.port)).toBe(meshConfig?.probes?.port);
      const name = /^\/app-health\/(.+)$/.exec(get?.path ?? '')?.[1];
      expect(meshConfig?.probes?.checks.map((c) => c.name)).toContain(name);
      // meshlet's own check must fit inside the kubelet's timeout.
      const check = meshConfig?.probes?.checks.find((c) => c.name === name);
      expect(check?.timeoutSeconds ?? 99).toBeLessThanOrEqual(probe?.timeoutSeconds ?? 1);
    }
    const ports = new Map((sidecar.ports ?? []).map((p) => [p.name, p.containerPort]));
    expect(ports.get('meshlet-probes')).toBe(meshConfig?.probes?.port);
    expect(ports.get('meshlet-metrics')).toBe(meshConfig?.metrics?.port);
    const scrape = parse(readFileSync(path.join(DIR, 'prometheus/scrape.yaml'), 'utf8')) as {
      scrape_configs: { metrics_path: string; relabel_configs: { source_labels?: string[]; regex?: string; action?: string }[] }[];
    };
    const job = scrape.scrape_configs[0]!;
    expect(job.metrics_path).toBe('/stats/prometheus');
    expect(job.relabel_configs).toContainEqual({ source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: 'meshlet-metrics', action: 'keep' });
  });
});
