// The lint boundaries hold: ESLint, with the repository's own config, refuses
// a builder or a config module that imports I/O or a module above it, and
// accepts what they may use. Each source is linted as if it were a file at
// the given path (the file is never written).
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({
  cwd: process.cwd(),
  // The boundary rules need no type information; the fixture paths are not in the TS project.
  overrideConfig: [
    { files: ['**/*.ts'], ...tseslint.configs.disableTypeChecked, languageOptions: { parserOptions: { project: null, projectService: false } } },
  ],
});

async function restricted(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).filter((m) => /no-restricted-(imports|properties|syntax)/.test(m.ruleId ?? '')).map((m) => m.message);
}

const take = (names: string, mod: string): string => `const ${names} = process.getBuiltinModule('${mod}');\nexport const x = ${names.replace(/[{} ]/g, '')};\n`;

describe('builders and config stay pure', () => {
  it('a builder taking node:fs fails lint', async () => {
    const msgs = await restricted('src/xds/builders/io-fixture.ts', take('{ readFileSync }', 'node:fs'));
    expect(msgs).toEqual([expect.stringMatching(/no I\/O/)]);
  });

  it.each([
    ['src/xds/builders/io-fixture.ts', take('{ spawn }', 'node:child_process')],
    ['src/xds/builders/io-fixture.ts', take('{ createServer }', 'node:net')],
    ['src/xds/builders/io-fixture.ts', take('net', 'node:net')],
    ['src/xds/builders/io-fixture.ts', "export const x = process.getBuiltinModule('node:net').connect;\n"],
    ['src/config/io-fixture.ts', "const use = (m: unknown): unknown => m;\nexport const x = use(process.getBuiltinModule('node:net'));\n"],
    ['src/config/io-fixture.ts', take('{ createSocket }', 'node:dgram')],
    ['src/config/io-fixture.ts', take('{ readFile }', 'node:fs/promises')],
    ['src/config/io-fixture.ts', "export const x = process.getBuiltinModule('node:fs');\n"],
    ['src/xds/builders/io-fixture.ts', "import { Meshlet } from '../../run/service.js';\nexport const x = Meshlet;\n"],
    ['src/config/io-fixture.ts', "import { adminGet } from '../envoy/admin.js';\nexport const x = adminGet;\n"],
    ['src/config/io-fixture.ts', "import { startDebugServer } from '../debug/server.js';\nexport const x = startDebugServer;\n"],
    ['src/config/load.ts', "import { runCommand } from '../cli/run.js';\nexport const x = runCommand;\n"],
    ['src/config/load.ts', take('{ spawn }', 'node:child_process')],
  ])('%s: refused: %s', async (file, code) => {
    expect(await restricted(file, code)).toHaveLength(1);
  });

  it.each([
    [
      'src/xds/builders/io-fixture.ts',
      "import { TYPE } from '../protos.js';\nimport type { MeshConfig } from '../../config/model.js';\n" +
        "const { isIP } = process.getBuiltinModule('node:net');\n" +
        'export const x = [isIP, TYPE] as const;\nexport type C = MeshConfig;\n',
    ],
    ['src/config/io-fixture.ts', take('{ createHash }', 'node:crypto') + "export const p = process.getBuiltinModule('node:path');\n"],
    // The config's I/O edge reads files; it still may not reach above.
    ['src/config/load.ts', take('{ readFileSync }', 'node:fs')],
  ])('%s: allowed', async (file, code) => {
    expect(await restricted(file, code)).toEqual([]);
  });
});

// An ESM import of a built-in reads every export, and the lazy ones load more:
// node:fs brings fs/promises and readline, node:crypto webcrypto. src/ takes
// built-ins with process.getBuiltinModule instead; types may still be imported.
describe('src/ takes node built-ins with process.getBuiltinModule', () => {
  it.each([
    ['src/run/io-fixture.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n"],
    ['src/run/io-fixture.ts', "import net from 'node:net';\nexport const x = net;\n"],
    ['src/xds/io-fixture.ts', "import * as crypto from 'crypto';\nexport const x = crypto;\n"],
    ['src/xds/builders/io-fixture.ts', "import { isIP } from 'node:net';\nexport const x = isIP;\n"],
  ])('%s: a value import is refused: %s', async (file, code) => {
    expect(await restricted(file, code)).toEqual([expect.stringMatching(/process\.getBuiltinModule/)]);
  });

  it('types may still be imported, and the module taken with getBuiltinModule', async () => {
    const code = "import type { Stats } from 'node:fs';\nconst { statSync } = process.getBuiltinModule('node:fs');\nexport const x: Stats = statSync('/');\n";
    expect(await restricted('src/run/io-fixture.ts', code)).toEqual([]);
  });
});
