// Envoy's static bootstrap: the same mesh with every listener, cluster and
// secret inline, no xDS. It is the Contrast-equivalent baseline (and
// `meshlet bootstrap --static`), kept apart from bootstrap.ts so that the
// ADS form `meshlet run` writes does not load the resource builders.
import type { CertState } from '../certs/types.js';
import type { MeshConfig } from '../config/model.js';
import type { JsonObject } from '../xds/protos.js';
import { buildResources } from '../xds/builders/index.js';
import { bootstrapBase, type BootstrapOptions } from './bootstrap.js';

/** A resource as a static_resources entry: the bootstrap's field types it, so no "@type". */
function untyped(resource: JsonObject): JsonObject {
  const rest = { ...resource };
  delete rest['@type'];
  return rest;
}

/** The same mesh with every listener, cluster and secret inline: no control plane, no rotation. */
export function buildStaticBootstrap(config: MeshConfig, certs: CertState, opts: Partial<Omit<BootstrapOptions, 'delta'>> = {}): JsonObject {
  const r = buildResources(config, certs, { secrets: 'static' });
  return {
    ...bootstrapBase(config, opts.nodeId ?? 'meshlet', opts.cluster ?? 'meshlet'),
    static_resources: { listeners: r.listeners.map(untyped), clusters: r.clusters.map(untyped), secrets: r.secrets.map(untyped) },
  };
}
