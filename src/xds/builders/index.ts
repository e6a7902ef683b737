// Pure functions from the validated config and the current certificates to
// Envoy resources in Envoy's JSON form (with "@type"; src/xds/protos.ts
// encodes them). Same input, same JSON, key order included.
import type { CertState } from '../../certs/types.js';
import type { MeshConfig } from '../../config/model.js';
import type { JsonObject } from '../protos.js';
import { buildClusters } from './clusters.js';
import { buildListeners } from './listeners.js';
import { buildSecrets } from './secrets.js';
import type { SecretSource } from './tls.js';
import type { ChainGenerations } from './listeners-inbound.js';

export { buildClusters } from './clusters.js';
export { buildListeners } from './listeners.js';
export { buildSecrets } from './secrets.js';
export { CLUSTER, DNS_CACHE, LISTENER, SECRET } from './names.js';
export type { SecretSource } from './tls.js';
export { nextChainGenerations, type ChainGenerations } from './listeners-inbound.js';

export interface Resources {
  listeners: JsonObject[];
  clusters: JsonObject[];
  secrets: JsonObject[];
}

export interface BuildOptions {
  /** 'ads' (default): SDS references fetch secrets over ADS. 'static': by name from a bootstrap's static secrets. */
  secrets?: SecretSource;
  /** Inbound chains renamed so Envoy drains them (see nextChainGenerations). */
  generations?: ChainGenerations;
}

export function buildResources(config: MeshConfig, certs: CertState, opts: BuildOptions = {}): Resources {
  const source = opts.secrets ?? 'ads';
  return { listeners: buildListeners(config, source, opts.generations), clusters: buildClusters(config, source), secrets: buildSecrets(certs) };
}
