// meshlet dev-pki: a throwaway mesh CA and workload certificate under
// Contrast's file names, for trying meshlet locally. Never for production.
import { createPki } from '../devpki/pki.js';
import { UsageError } from './usage.js';
import type { Command } from './main.js';

export const devPkiCommand: Command = {
  options: { out: { type: 'string' }, san: { type: 'string', multiple: true } },
  async run(values) {
    const out = values['out'] as string | undefined;
    if (!out) throw new UsageError('dev-pki needs --out DIR');
    const sans = (values['san'] as unknown as string[] | undefined) ?? ['meshlet.local'];
    const pki = await createPki(`${out}/.ca`);
    const files = await pki.writeContrastDir(out, await pki.issueLeaf({ sans }));
    process.stdout.write(`wrote ${files.ca}, ${files.certChain} and ${files.key} (SANs ${sans.join(', ')}); a throwaway PKI for local tries only\n`);
    return 0;
  },
};
