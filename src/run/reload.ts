// Turning new file contents into a new snapshot, or into a refusal that keeps
// the last good config serving. Pure apart from reading the cert files.
import { ConfigInvalidError, formatErrors } from '../config/errors.js';
import { loadConfigText } from '../config/load.js';
import type { MeshConfig } from '../config/model.js';
import { formatCertProblem, readCerts } from '../certs/index.js';
import type { CertState } from '../certs/types.js';
import type { Snapshot } from '../xds/snapshot.js';
import { buildBootstrap, renderBootstrap } from '../envoy/bootstrap.js';
// Not iptables/index.js: comparing rules needs only the generator, not the modules that apply and verify them.
import { generateRules } from '../iptables/generate.js';
import { snapshotFor } from './snapshot-for.js';
import { nextChainGenerations, type ChainGenerations } from '../xds/builders/index.js';

export interface Desired {
  config: MeshConfig;
  certs: CertState;
  snapshot: Snapshot;
  /** Inbound chains renamed by earlier edits so Envoy drains them (absent: none). */
  generations?: ChainGenerations;
}

export type Outcome = { ok: true; desired: Desired } | { ok: false; error: string };

/**
 * Parts of the config that live outside xDS: the iptables rules (applied
 * once by `meshlet init`) and Envoy's bootstrap. A reload cannot change
 * them, so it is refused instead of half-applied.
 */
function restartOnlyChange(prev: MeshConfig, next: MeshConfig): string | undefined {
  if (JSON.stringify(generateRules(prev)) !== JSON.stringify(generateRules(next))) {
    return (
      'this edit changes the iptables rules (ingress mode, plaintext or mapped ports, capture, exclusions, portless routes, DNS capture or proxy ' +
      'ports), which only `meshlet init` applies; restart the pod to apply it'
    );
  }
  // meshlet's own listeners are bound once, at start.
  if (prev.probes?.port !== next.probes?.port || prev.metrics?.port !== next.metrics?.port) {
    return 'this edit adds, removes or moves a port meshlet listens on (probes.port, metrics.port); restart the pod to apply it';
  }
  const boot = (c: MeshConfig): string => renderBootstrap(buildBootstrap(c, { nodeId: '', cluster: '' }));
  if (boot(prev) !== boot(next)) return "this edit changes Envoy's bootstrap (admin address or xDS socket); restart the pod to apply it";
  return undefined;
}

export function reloadConfig(text: string, source: string, prev: Desired): Outcome {
  let config: MeshConfig;
  try {
    config = loadConfigText(text, source);
  } catch (err) {
    if (err instanceof ConfigInvalidError) return { ok: false, error: formatErrors(err.errors).join('; ') };
    throw err;
  }
  const restart = restartOnlyChange(prev.config, config);
  if (restart) return { ok: false, error: restart };
  const certPathsChanged = JSON.stringify(config.certs) !== JSON.stringify(prev.config.certs);
  let certs = prev.certs;
  if (certPathsChanged) {
    const read = readCerts(config.certs);
    if (!read.state) return { ok: false, error: read.problems.map(formatCertProblem).join('; ') };
    certs = read.state;
  }
  return build(config, certs, prev);
}

export function reloadCerts(prev: Desired): Outcome {
  const read = readCerts(prev.config.certs);
  if (!read.state) return { ok: false, error: read.problems.map(formatCertProblem).join('; ') };
  return build(prev.config, read.state, prev);
}

/** The state `config` and `certs` give after `prev`; the inbound chain generations follow the config (same config, same generations). */
function build(config: MeshConfig, certs: CertState, prev: Desired): Outcome {
  try {
    const generations = config === prev.config ? prev.generations : nextChainGenerations(prev.config, config, prev.generations ?? new Map());
    return { ok: true, desired: { config, certs, snapshot: snapshotFor(config, certs, generations), ...(generations ? { generations } : {}) } };
  } catch (err) {
    return { ok: false, error: `building resources failed: ${(err as Error).message}` };
  }
}
