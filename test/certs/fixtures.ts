// Shared set-up for the certificate tests: temp dirs and a way to write one
// case's three files, each of which may be replaced by any text or left out.
import { rm, writeFile } from 'node:fs/promises';
import { tempDir as sharedTempDir } from '../helpers/tmp.js';
import type { CertFiles } from '../../src/certs/problems.js';
import type { Leaf, Pki } from '../helpers/pki.js';

export const tempDir = (prefix = 'meshlet-certs-'): ReturnType<typeof sharedTempDir> => sharedTempDir(prefix);

/** Text for a file, or `null` to leave the file out. */
export type Content = string | null;

export interface CaseFiles {
  ca?: Content;
  certChain?: Content;
  key?: Content;
}

/** Writes a Contrast-style directory for `leaf`, with the overrides applied. */
export async function writeCase(pki: Pki, leaf: Leaf, dir: string, over: CaseFiles, expectedSans: readonly string[] = []): Promise<CertFiles> {
  const files = await pki.writeContrastDir(dir, leaf);
  for (const name of ['ca', 'certChain', 'key'] as const) {
    const v = over[name];
    if (v === undefined) continue;
    await rm(files[name]); // the helper writes read-only files, as Contrast does
    if (v !== null) await writeFile(files[name], v, { mode: 0o600 });
  }
  return { ca: files.ca, certChain: files.certChain, key: files.key, expectedSans };
}

/** The base64 lines of a PEM body, to assert that none of them leaks into a message. */
export function pemBodyLines(pem: string): string[] {
  return pem.split('\n').filter((l) => l.length > 0 && !l.startsWith('-----'));
}
