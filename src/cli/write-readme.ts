// Rewrites README.md's CLI table from src/cli/usage.ts (npm run docs).
// A test fails when the committed README.md differs from this output.
import { withCliTable } from './usage.js';
const { readFileSync, writeFileSync } = process.getBuiltinModule('node:fs');
const { pathToFileURL } = process.getBuiltinModule('node:url');

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const before = readFileSync('README.md', 'utf8');
  const after = withCliTable(before);
  if (after !== before) writeFileSync('README.md', after);
  process.stdout.write(after === before ? 'README.md: CLI table up to date\n' : 'README.md: CLI table rewritten\n');
}
