// TLS contexts. Certificates and the CA always come through SDS references,
// so a rotation replaces two secrets and never touches a listener or cluster.
import { isIP } from '../../config/net.js';
import type { KeyExchange } from '../../config/model.js';
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

/**
 * Key exchange groups, in preference order, named on every TLS context so a
 * change in Envoy's defaults cannot remove the post-quantum group. pq-preferred:
 * the hybrid post-quantum group first (recorded traffic stays safe against a
 * future quantum computer), then X25519 and P-256 for peers without it.
 * pq-required: the hybrid group only, so a peer that cannot do it gets a
 * handshake failure instead of a classic key exchange. Envoy's BoringSSL
 * spells the hybrid group X25519MLKEM768 (0x11ec on the wire).
 */
export const ECDH_CURVES: Readonly<Record<KeyExchange, readonly string[]>> = {
  'pq-preferred': ['X25519MLKEM768', 'X25519', 'P-256'],
  'pq-required': ['X25519MLKEM768'],
};

/**
 * TLS 1.3 only. Under 1.2 both certificates cross the link in clear, so any
 * client could pick 1.2 and read the workload identities off the wire.
 */
function tls13Only(kx: KeyExchange): JsonObject {
  return { tls_minimum_protocol_version: 'TLSv1_3', tls_maximum_protocol_version: 'TLSv1_3', ecdh_curves: [...ECDH_CURVES[kx]] };
}

/** For a `tls` port that opted in: outside clients that cannot do 1.3. No client certificate is asked, so only the server's crosses in clear. */
function tls12Allowed(kx: KeyExchange): JsonObject {
  return { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3', ecdh_curves: [...ECDH_CURVES[kx]] };
}

export interface DownstreamOptions {
  /** Only for `tls` (never `mtls`): accept TLS 1.2 from clients outside the mesh. */
  allowTls12?: boolean;
  /** Default pq-preferred. */
  keyExchange?: KeyExchange;
}

/** Server side: `mtls` requires a client certificate from the mesh CA (and SAN), `tls` asks for none. TLS 1.3 only unless a `tls` port opted in. */
export function downstreamTls(policy: 'mtls' | 'tls', allowedSans: readonly string[], source: SecretSource, opts: DownstreamOptions = {}): JsonObject {
  const certs = { tls_certificate_sds_secret_configs: [sdsRef(SECRET.workload, source)] };
  const kx = opts.keyExchange ?? 'pq-preferred';
  if (policy === 'tls') {
    const params = opts.allowTls12 === true ? tls12Allowed(kx) : tls13Only(kx);
    return tlsSocket({ '@type': typeUrl(TYPE.downstreamTls), common_tls_context: { tls_params: params, ...certs } });
  }
  return tlsSocket({
    '@type': typeUrl(TYPE.downstreamTls),
    common_tls_context: { tls_params: tls13Only(kx), ...certs, ...validation(allowedSans, source) },
    require_client_certificate: true,
  });
}

export interface UpstreamPeer {
  sni?: string;
  expectedSans: readonly string[];
  /** Default pq-preferred. */
  keyExchange?: KeyExchange;
}

/**
 * Client side: present the workload certificate, trust the mesh CA, optionally
 * send SNI and pin SANs. Always TLS 1.3: every upstream is another sidecar
 * (or a mesh-CA server), and under 1.2 our certificate would cross in clear.
 */
export function upstreamTls(peer: UpstreamPeer, source: SecretSource): JsonObject {
  const ctx: JsonObject = {
    '@type': typeUrl(TYPE.upstreamTls),
    common_tls_context: {
      tls_params: tls13Only(peer.keyExchange ?? 'pq-preferred'),
      tls_certificate_sds_secret_configs: [sdsRef(SECRET.workload, source)],
      ...validation(peer.expectedSans, source),
    },
  };
  if (peer.sni !== undefined) ctx['sni'] = peer.sni;
  return tlsSocket(ctx);
}
