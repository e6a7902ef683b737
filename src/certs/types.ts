// The certificate material meshlet serves to Envoy through SDS.
export interface CertState {
  /** PEM of the mesh CA bundle (trust anchor). */
  caPem: string;
  /** PEM of the workload certificate chain, leaf first. */
  chainPem: string;
  /** PEM of the private key. Never log or serve this outside SDS. */
  keyPem: string;
}
