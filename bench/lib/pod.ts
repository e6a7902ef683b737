// A pod's files for a benchmark: a throwaway PKI, the certificates behind a
// kubelet-style `..data` symlink (so rotation is one atomic swap), and the
// config file, always replaced by write-then-rename.
import { chmodSync, chownSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { createPki, swapSecretVolume, type Leaf, type Pki } from '../../src/devpki/pki.js';
import type { RawConfigInput } from '../../src/config/schema.js';

export interface Ports {
  debug: number;
  inbound: number;
  outbound: number;
  portless: number;
}

export interface BenchPod {
  dir: string;
  configPath: string;
  certDir: string;
  pki: Pki;
  leaf: Leaf;
  certVersion: number;
}

/** Envoy runs as uid 1337 and must reach the socket and the bootstrap inside the pod directory. */
export async function makePod(label: string, opts: { pki?: Pki; sans?: string[] } = {}): Promise<BenchPod> {
  const dir = mkdtempSync(path.join(tmpdir(), `meshlet-bench-${label}-`));
  chmodSync(dir, 0o755);
  const pki = opts.pki ?? (await createPki(path.join(dir, 'ca'), { name: 'meshlet-bench' }));
  const leaf = await pki.issueLeaf({ sans: opts.sans ?? [label] });
  const certDir = path.join(dir, 'certs');
  await pki.writeContrastDir(path.join(certDir, '..v0'), leaf);
  symlinkSync('..v0', path.join(certDir, '..data'));
  for (const f of ['mesh-ca.pem', 'certChain.pem', 'key.pem']) symlinkSync(`..data/${f}`, path.join(certDir, f));
  return { dir, configPath: path.join(dir, 'config.yaml'), certDir, pki, leaf, certVersion: 0 };
}

/** The parts every benchmark config shares: this pod's certificates, sockets and ports. */
export function baseConfig(pod: BenchPod, ports: Ports): RawConfigInput {
  return {
    certs: { ca: `${pod.certDir}/mesh-ca.pem`, certChain: `${pod.certDir}/certChain.pem`, key: `${pod.certDir}/key.pem` },
    proxy: {
      inboundPort: ports.inbound,
      outboundPort: ports.outbound,
      portlessEgressPort: ports.portless,
      xdsSocket: `${pod.dir}/run/xds.sock`,
      bootstrapPath: `${pod.dir}/run/envoy.json`,
    },
    debug: { address: `127.0.0.1:${ports.debug}` },
  };
}

/** Replaces the config file atomically; returns once the rename is done. */
export function writeConfig(pod: BenchPod, config: RawConfigInput, file = pod.configPath): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, stringify(config));
  renameSync(tmp, file);
}

/** The kubelet's Secret update: write a new version directory, then swap `..data` in one rename. */
export async function rotateCerts(pod: BenchPod, leaf: Leaf): Promise<void> {
  pod.certVersion += 1;
  await swapSecretVolume(pod.pki, pod.certDir, pod.certVersion, leaf);
  pod.leaf = leaf;
}

/** A file the proxy uid must read (the static bootstrap is written 0600 by root). */
export function handToProxy(file: string, uid = 1337, gid = 1337): void {
  chownSync(file, uid, gid);
}

export function removePod(pod: BenchPod): void {
  rmSync(pod.dir, { recursive: true, force: true });
}
