// meshlet dev-pki: a throwaway mesh CA and workload certificate under
// Contrast's file names, for trying meshlet locally. Never for production.
import { createPki } from '../devpki/pki.js';
import { UsageError } from './usage.js';
import { emit } from './output.js';
import type { Command } from './main.js';

export const devPkiCommand: Command = {
  async run(values) {
    const out = values['out'] as string | undefined;
    if (!out) throw new UsageError('dev-pki needs --out DIR');
    const sans = (values['san'] as unknown as string[] | undefined) ?? ['meshlet.local'];
    // The CA keys stay in memory: the three files below are all that is written.
    const pki = await createPki(out);
    const leaf = await pki.issueLeaf({ sans });
    const files = await pki.writeContrastDir(out, leaf);
    emit(
      values,
      { ok: true, ca: files.ca, certChain: files.certChain, key: files.key, sans, notAfter: new Date(leaf.cert.validTo).toISOString() },
      `wrote ${files.ca}, ${files.certChain} and ${files.key} (SANs ${sans.join(', ')}); a throwaway PKI for local tries only\n`,
    );
    return 0;
  },
};
