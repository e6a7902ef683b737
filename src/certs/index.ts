// The certificate module's public surface.
export type { CertState } from './types.js';
export { CertError, formatCertProblem, type CertField, type CertFiles, type CertProblem } from './problems.js';
export { loadCerts, readCerts, type LoadOptions, type ReadResult } from './load.js';
export { checkCerts } from './check.js';
export { describeCerts, type CertDescription, type CertSummary } from './describe.js';
