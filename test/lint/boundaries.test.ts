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
  return (result?.messages ?? []).filter((m) => /no-restricted-(imports|properties)/.test(m.ruleId ?? '')).map((m) => m.message);
}

describe('builders and config stay pure', () => {
  it('a builder importing node:fs fails lint', async () => {
    const msgs = await restricted(
      'src/xds/builders/io-fixture.ts',
      "import { readFileSync } from 'node:fs';\nexport const x = readFileSync('/etc/hostname', 'utf8');\n",
    );
    expect(msgs).toEqual([expect.stringMatching(/no I\/O/)]);
  });

  it.each([
    ['src/xds/builders/io-fixture.ts', "import { spawn } from 'node:child_process';\nexport const x = spawn;\n"],
    ['src/xds/builders/io-fixture.ts', "import { createServer } from 'node:net';\nexport const x = createServer;\n"],
    ['src/config/io-fixture.ts', "import { createSocket } from 'node:dgram';\nexport const x = createSocket;\n"],
    ['src/config/io-fixture.ts', "import { readFile } from 'fs/promises';\nexport const x = readFile;\n"],
    ['src/config/io-fixture.ts', "export const x = process.getBuiltinModule('node:fs');\n"],
    ['src/xds/builders/io-fixture.ts', "import { Meshlet } from '../../run/service.js';\nexport const x = Meshlet;\n"],
    ['src/config/io-fixture.ts', "import { adminGet } from '../envoy/admin.js';\nexport const x = adminGet;\n"],
    ['src/config/io-fixture.ts', "import { startDebugServer } from '../debug/server.js';\nexport const x = startDebugServer;\n"],
    ['src/config/load.ts', "import { runCommand } from '../cli/run.js';\nexport const x = runCommand;\n"],
  ])('%s: refused: %s', async (file, code) => {
    expect(await restricted(file, code)).toHaveLength(1);
  });

  it.each([
    [
      'src/xds/builders/io-fixture.ts',
      "import { isIP } from 'node:net';\nimport { TYPE } from '../protos.js';\nimport type { MeshConfig } from '../../config/model.js';\nexport const x = " +
        '[isIP, TYPE] as const;\nexport type C = MeshConfig;\n',
    ],
    ['src/config/io-fixture.ts', "import path from 'node:path';\nimport { createHash } from 'node:crypto';\nexport const x = [path, createHash] as const;\n"],
    // The config's I/O edge reads files; it still may not reach above.
    ['src/config/load.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n"],
  ])('%s: allowed', async (file, code) => {
    expect(await restricted(file, code)).toEqual([]);
  });
});
