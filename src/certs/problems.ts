// A certificate problem names the config field, the file, and what is wrong
// together with how to fix it. All problems are collected, never only the first.

export type CertField = 'certs.ca' | 'certs.certChain' | 'certs.key';

export interface CertProblem {
  /** The file the problem is in (a path, or a label such as "(in memory)"). */
  file: string;
  field: CertField;
  /** What is wrong and how to fix it. Never contains key material. */
  problem: string;
}

/** The three files and the SANs the workload certificate must carry: `MeshConfig['certs']`. */
export interface CertFiles {
  ca: string;
  certChain: string;
  key: string;
  expectedSans: readonly string[];
}

export function formatCertProblem(p: CertProblem): string {
  return `${p.field} (${p.file}): ${p.problem}`;
}

export class CertError extends Error {
  constructor(readonly problems: readonly CertProblem[]) {
    const n = problems.length;
    super(`certificates: ${n} problem${n === 1 ? '' : 's'}\n${problems.map((p) => `  ${formatCertProblem(p)}`).join('\n')}`);
    this.name = 'CertError';
  }
}

/** How a problem's message refers to another file: `certs.certChain (/path)`. */
export function ref(files: Pick<CertFiles, 'ca' | 'certChain' | 'key'>, field: CertField): string {
  const key = field.slice('certs.'.length) as 'ca' | 'certChain' | 'key';
  return `${field} (${files[key]})`;
}
