// Reads the CA bundle, the chain and the key from disk and checks them
// together. `loadCerts` is the startup path (throws); `readCerts` is the
// rotation path (returns problems, so the caller keeps the old material).
import { readInputFile } from '../fs/read-limited.js';
import type { CertState } from './types.js';
import { CertError, type CertField, type CertFiles, type CertProblem } from './problems.js';
import { checkMaterial, type CertMaterial } from './check.js';

export interface LoadOptions {
  /** The clock for notBefore/notAfter. */
  now?: Date;
  /** Reads a file as UTF-8; throws an errno error as fs does. */
  readFile?: (path: string) => string;
}

export interface ReadResult {
  /** Present only when all three files were read and no problem was found. */
  state?: CertState;
  problems: CertProblem[];
}

const WHAT: Record<CertField, string> = {
  'certs.ca': 'the mesh CA',
  'certs.certChain': 'the workload certificate chain',
  'certs.key': 'the workload key',
};

const CONTRAST_NAME: Record<CertField, string> = { 'certs.ca': 'mesh-ca.pem', 'certs.certChain': 'certChain.pem', 'certs.key': 'key.pem' };

function readProblem(field: CertField, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return `file not found — ${WHAT[field]} is written by Contrast's Initializer; check the volume mount, or set ${field} to where the file is`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied — make the file readable by meshlet's user (uid ${process.getuid?.() ?? '?'}), or run meshlet as the file's owner`;
    case 'EISDIR':
      return `is a directory — set ${field} to the PEM file itself (Contrast: ${CONTRAST_NAME[field]})`;
    case 'ENOTREG':
    case 'ETOOBIG':
    case 'EBINARY':
      // Already names the file's type or size; keep only the reason.
      return `${err.message.slice(err.message.indexOf(': ') + 2)} — set ${field} to the PEM file (Contrast: ${CONTRAST_NAME[field]})`;
    default:
      return `cannot read the file (${err.code ?? err.message}) — check the path and the volume mount`;
  }
}

/** Refuses FIFOs, devices and oversized files instead of hanging or filling memory on them. */
const defaultRead = (path: string): string => readInputFile(path, MAX_PEM_BYTES);

/** A CA bundle of a few hundred certificates still fits. */
const MAX_PEM_BYTES = 1024 * 1024;

export function readCerts(files: CertFiles, opts: LoadOptions = {}): ReadResult {
  const { m, problems } = readMaterial(files, opts);
  problems.push(...checkMaterial(m, files, opts.now ?? new Date()));
  if (problems.length > 0 || m.caPem === undefined || m.chainPem === undefined || m.keyPem === undefined) return { problems };
  return { state: { caPem: m.caPem, chainPem: m.chainPem, keyPem: m.keyPem }, problems };
}

function readMaterial(files: CertFiles, opts: LoadOptions): { m: CertMaterial; problems: CertProblem[] } {
  const read = opts.readFile ?? defaultRead;
  const problems: CertProblem[] = [];
  const readOne = (field: CertField, path: string): string | undefined => {
    try {
      return read(path);
    } catch (err) {
      problems.push({ field, file: path, problem: readProblem(field, err as NodeJS.ErrnoException) });
      return undefined;
    }
  };
  const m: CertMaterial = {};
  const caPem = readOne('certs.ca', files.ca);
  const chainPem = readOne('certs.certChain', files.certChain);
  const keyPem = readOne('certs.key', files.key);
  if (caPem !== undefined) m.caPem = caPem;
  if (chainPem !== undefined) m.chainPem = chainPem;
  if (keyPem !== undefined) m.keyPem = keyPem;
  return { m, problems };
}

/** Reads and checks the certificate files; throws a CertError listing every problem. */
export function loadCerts(files: CertFiles, opts: LoadOptions = {}): CertState {
  const r = readCerts(files, opts);
  if (r.state === undefined) throw new CertError(r.problems);
  return r.state;
}

/**
 * loadCerts in two steps, for `meshlet run`: readCertFiles before Envoy
 * starts, so that a file that cannot be read stops the start with the file
 * named and no Envoy ever runs; checkReadCerts (parse, chain, key, SANs,
 * validity) while Envoy boots, as the parse loads node:crypto. A failed read
 * still reports every problem, the other files' checks included.
 */
export function readCertFiles(files: CertFiles, opts: LoadOptions = {}): CertState {
  const { m, problems } = readMaterial(files, opts);
  if (problems.length > 0 || m.caPem === undefined || m.chainPem === undefined || m.keyPem === undefined) {
    throw new CertError([...problems, ...checkMaterial(m, files, opts.now ?? new Date())]);
  }
  return { caPem: m.caPem, chainPem: m.chainPem, keyPem: m.keyPem };
}

/** The second step of readCertFiles: throws a CertError listing every problem of what was read. */
export function checkReadCerts(state: CertState, files: CertFiles, opts: Pick<LoadOptions, 'now'> = {}): CertState {
  const problems = checkMaterial(state, files, opts.now ?? new Date());
  if (problems.length > 0) throw new CertError(problems);
  return state;
}
