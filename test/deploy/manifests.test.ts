// The Kubernetes manifests in deploy/kubernetes/: valid against the Kubernetes
// API (schema and field names), shaped the way the security model needs, and
// carrying a meshlet config that meshlet itself accepts.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import { validateConfig } from '../../src/config/validate.js';
import type { MeshConfig } from '../../src/config/model.js';
import { schemaErrors, unknownFields } from './k8s-schema.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DIR = path.join(ROOT, 'deploy/kubernetes');
const MANIFESTS = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();

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
    ((side['resources'] as Record<string, Record<string, unknown>>)['limits']!)['memory'] = 'lots';
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
