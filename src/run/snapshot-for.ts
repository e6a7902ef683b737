// The snapshot a config and its certificates give, for the start and for
// every reload. A module of its own so that `meshlet run` loads the resource
// builders right after spawning Envoy, without the reload path's modules.
import type { MeshConfig } from '../config/model.js';
import type { CertState } from '../certs/types.js';
import { buildResources, type ChainGenerations } from '../xds/builders/index.js';
import { buildSnapshot, type Snapshot } from '../xds/snapshot.js';

export function snapshotFor(config: MeshConfig, certs: CertState, generations?: ChainGenerations): Snapshot {
  return buildSnapshot(buildResources(config, certs, generations ? { generations } : {}));
}
