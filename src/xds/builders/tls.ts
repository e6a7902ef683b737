// TLS contexts. Certificates and the CA always come through SDS references,
// so a rotation replaces two secrets and never touches a listener or cluster.
import { isIP } from 'node:net';
import { TYPE, typeUrl, type JsonObject } from '../protos.js';
import { SECRET } from './names.js';

/**
 * Where SDS references point: 'ads' for the live control plane, 'static' for
 * a bootstrap whose static_resources.secrets hold the secrets by name.
 */
export type SecretSource = 'ads' | 'static';

export function sdsRef(name: string, source: SecretSource): JsonObject {
  return source === 'ads' ? { name, sds_config: { ads: {}, resource_api_version: 'V3' } } : { name };
}

/**
 * Typed SAN matchers: an IP literal is an IP_ADDRESS SAN, anything with a
 * scheme ("spiffe://…", "urn:…") a URI, "a@b" an EMAIL, the rest DNS (Envoy's
 * DNS matcher also honours wildcard certificates).
 * https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/transport_sockets/tls/v3/common.proto#envoy-v3-api-msg-extensions-transport-sockets-tls-v3-subjectaltnamematcher
 */
export function sanMatcher(san: string): JsonObject {
  let type = 'DNS';
  if (isIP(san) !== 0) type = 'IP_ADDRESS';
  else if (san.includes(':')) type = 'URI';
  else if (san.includes('@')) type = 'EMAIL';
  return { san_type: type, matcher: { exact: san } };
}

/** Trust the mesh CA; with SANs, also require one of them in the peer certificate. */
function validation(sans: readonly string[], source: SecretSource): JsonObject {
  const ca = sdsRef(SECRET.meshCa, source);
  if (sans.length === 0) return { validation_context_sds_secret_config: ca };
  return {
    combined_validation_context: {
      default_validation_context: { match_typed_subject_alt_names: sans.map(sanMatcher) },
      validation_context_sds_secret_config: ca,
    },
  };
}

function tlsSocket(typedConfig: JsonObject): JsonObject {
  return { name: 'envoy.transport_sockets.tls', typed_config: typedConfig };
}

/** Server side: `mtls` requires a client certificate from the mesh CA (and SAN), `tls` asks for none. */
export function downstreamTls(policy: 'mtls' | 'tls', allowedSans: readonly string[], source: SecretSource): JsonObject {
  const common: JsonObject = { tls_certificate_sds_secret_configs: [sdsRef(SECRET.workload, source)] };
  if (policy === 'tls') return tlsSocket({ '@type': typeUrl(TYPE.downstreamTls), common_tls_context: common });
  return tlsSocket({
    '@type': typeUrl(TYPE.downstreamTls),
    common_tls_context: { ...common, ...validation(allowedSans, source) },
    require_client_certificate: true,
  });
}

export interface UpstreamPeer {
  sni?: string;
  expectedSans: readonly string[];
}

/**
 * Envoy's client side stops at TLS 1.2 by default, and under 1.2 both
 * workload certificates cross the link in clear. Sidecar to sidecar we
 * negotiate 1.3 (1.2 stays allowed for a remote that cannot do 1.3).
 */
const UPSTREAM_TLS_PARAMS: JsonObject = { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3' };

/** Client side: present the workload certificate, trust the mesh CA, optionally send SNI and pin SANs. */
export function upstreamTls(peer: UpstreamPeer, source: SecretSource): JsonObject {
  const ctx: JsonObject = {
    '@type': typeUrl(TYPE.upstreamTls),
    common_tls_context: {
      tls_params: UPSTREAM_TLS_PARAMS,
      tls_certificate_sds_secret_configs: [sdsRef(SECRET.workload, source)],
      ...validation(peer.expectedSans, source),
    },
  };
  if (peer.sni !== undefined) ctx['sni'] = peer.sni;
  return tlsSocket(ctx);
}
