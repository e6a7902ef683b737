// The certificate module's public surface.
export type { CertState } from './types.js';
export { CertError, formatCertProblem, type CertField, type CertFiles, type CertProblem } from './problems.js';
export { checkReadCerts, loadCerts, readCertFiles, readCerts, type LoadOptions, type ReadResult } from './load.js';
export { checkCerts } from './check.js';
export { describeCerts, type CertDescription, type CertSummary } from './describe.js';
