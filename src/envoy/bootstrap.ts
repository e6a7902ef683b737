// Envoy's bootstrap: the ADS form `meshlet run` writes, and the static form
// (every resource inline, no xDS) that is the Contrast-equivalent baseline.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/bootstrap/v3/bootstrap.proto
import type { CertState } from '../certs/types.js';
import type { MeshConfig } from '../config/model.js';
import type { JsonObject } from '../xds/protos.js';
import { canonicalJson } from '../xds/version.js';
import { buildResources, CLUSTER } from '../xds/builders/index.js';
import { adminSocketPath } from '../config/constants.js';

export interface BootstrapOptions {
  nodeId: string;
  cluster: string;
  /** Delta ADS (DELTA_GRPC) when true or absent; state-of-the-world (GRPC) when false. */
  delta?: boolean;
}

const ADS: JsonObject = { ads: {}, resource_api_version: 'V3' };

function base(config: MeshConfig, nodeId: string, cluster: string): JsonObject {
  return {
    node: { id: nodeId, cluster },
    // Admin has no authentication and can stop Envoy: a Unix socket only the
    // proxy uid can open (0600, in its 0700 directory), never a TCP port.
    admin: { address: { pipe: { path: adminSocketPath(config.proxy.xdsSocket), mode: 0o600 } } },
  };
}

/** The static cluster Envoy's ADS stream uses: meshlet's Unix socket, HTTP/2 (gRPC). */
function xdsCluster(socketPath: string): JsonObject {
  return {
    name: CLUSTER.xds,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: CLUSTER.xds,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: socketPath } } } }] }],
    },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
  };
}

/** Listeners and clusters over ADS (wildcard LDS/CDS); secrets follow by name over the same stream. */
export function buildBootstrap(config: MeshConfig, opts: BootstrapOptions): JsonObject {
  return {
    ...base(config, opts.nodeId, opts.cluster),
    dynamic_resources: {
      ads_config: {
        api_type: opts.delta === false ? 'GRPC' : 'DELTA_GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: CLUSTER.xds } }],
        set_node_on_first_message_only: true,
      },
      lds_config: ADS,
      cds_config: ADS,
    },
    static_resources: { clusters: [xdsCluster(config.proxy.xdsSocket)] },
  };
}

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
    ...base(config, opts.nodeId ?? 'meshlet', opts.cluster ?? 'meshlet'),
    static_resources: { listeners: r.listeners.map(untyped), clusters: r.clusters.map(untyped), secrets: r.secrets.map(untyped) },
  };
}

/** Keys sorted recursively (canonicalJson, shared with the snapshot), so equal content always serializes to equal bytes. */
export function renderBootstrap(json: JsonObject): string {
  return `${JSON.stringify(canonicalJson(json), null, 2)}\n`;
}
