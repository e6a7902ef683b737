// Writes config/meshlet.schema.json from the zod schema (npm run schema).
// A test fails when the committed file differs from this output.
import { jsonSchema } from './schema.js';
const { writeFileSync } = process.getBuiltinModule('node:fs');
const { pathToFileURL } = process.getBuiltinModule('node:url');

export function renderJsonSchema(): string {
  return `${JSON.stringify(jsonSchema(), null, 2)}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync('config/meshlet.schema.json', renderJsonSchema());
}
