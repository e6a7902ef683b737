// The two SDS secrets. Their names never change, so a certificate rotation is
// an in-place secret update: no listener or cluster is rebuilt or drained.
import type { CertState } from '../../certs/types.js';
import { TYPE_URL, type JsonObject } from '../protos.js';
import { SECRET } from './names.js';

export function buildSecrets(certs: CertState): JsonObject[] {
  return [
    {
      '@type': TYPE_URL.secret,
      name: SECRET.workload,
      tls_certificate: { certificate_chain: { inline_string: certs.chainPem }, private_key: { inline_string: certs.keyPem } },
    },
    { '@type': TYPE_URL.secret, name: SECRET.meshCa, validation_context: { trusted_ca: { inline_string: certs.caPem } } },
  ];
}
