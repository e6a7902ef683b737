// Envoy's bootstrap in the ADS form `meshlet run` writes (the static form is
// static-bootstrap.ts). It needs only the config, not the resource builders:
// `meshlet run` writes it and starts Envoy before it loads them.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/bootstrap/v3/bootstrap.proto
import type { MeshConfig } from '../config/model.js';
import type { JsonObject } from '../xds/protos.js';
import { canonicalJson } from '../xds/version.js';
import { CLUSTER } from '../xds/builders/names.js';
import { adminSocketPath } from '../config/constants.js';

export interface BootstrapOptions {
  nodeId: string;
  cluster: string;
  /** Delta ADS (DELTA_GRPC) when true or absent; state-of-the-world (GRPC) when false. */
  delta?: boolean;
}

const ADS: JsonObject = { ads: {}, resource_api_version: 'V3' };

/**
 * How soon Envoy tries its ADS stream again after a failed connect: the
 * first retry within 10 ms, then doubling up to a second (Envoy's own default
 * is 500 ms, then up to 30 s). meshlet binds the xDS socket just after it
 * spawns Envoy (ARCHITECTURE.md, Startup order), tens of milliseconds before
 * Envoy first connects; should Envoy ever be first, the cost is one retry,
 * not half a second. The socket is local, so retrying often costs nothing.
 */
const ADS_RETRY_BACK_OFF: JsonObject = { base_interval: '0.010s', max_interval: '1s' };

/** What both forms share: the node's identity and Envoy's admin on its Unix socket. */
export function bootstrapBase(config: MeshConfig, nodeId: string, cluster: string): JsonObject {
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
    ...bootstrapBase(config, opts.nodeId, opts.cluster),
    dynamic_resources: {
      ads_config: {
        api_type: opts.delta === false ? 'GRPC' : 'DELTA_GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: CLUSTER.xds, retry_policy: { retry_back_off: ADS_RETRY_BACK_OFF } } }],
        set_node_on_first_message_only: true,
      },
      lds_config: ADS,
      cds_config: ADS,
    },
    static_resources: { clusters: [xdsCluster(config.proxy.xdsSocket)] },
  };
}

/** Keys sorted recursively (canonicalJson, shared with the snapshot), so equal content always serializes to equal bytes. */
export function renderBootstrap(json: JsonObject): string {
  return `${JSON.stringify(canonicalJson(json), null, 2)}\n`;
}
