// The real Envoy 1.40 checks what the builders emit: `envoy --mode validate`
// loads a bootstrap exactly as Envoy loads a config it is given, without
// serving. Each run takes well under a second.
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildBootstrap } from '../../src/envoy/bootstrap.js';
import { buildStaticBootstrap } from '../../src/envoy/static-bootstrap.js';
import type { JsonObject } from '../../src/xds/protos.js';
import { createTmpCa } from '../helpers/tmp-pki.js';
import { validateBootstrap } from '../helpers/envoy.js';
import { tmpDir } from '../helpers/tmp.js';
import { DISABLED, FULL, MAPPED, meshConfig } from './configs.js';

const dir = tmpDir('meshlet-validate-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ca = await createTmpCa(dir);
const certs = ca.certState(await ca.issue('workload', { sans: ['spiffe://mesh.test/ns/a/sa/workload'] }));

async function expectValid(bootstrap: JsonObject): Promise<void> {
  const r = await validateBootstrap(bootstrap, mkdtempSync(path.join(dir, 'run-')));
  expect(r.output.slice(-3000), 'envoy --mode validate output').toContain('OK');
  expect(r.ok).toBe(true);
}

describe('envoy --mode validate accepts', () => {
  it.each([
    ['every feature (tproxy, routes with and without ports, SNI, SAN pins, capture with exclusions)', FULL],
    ['mapped ingress', MAPPED],
    ['disabled ingress', DISABLED],
    ['the defaults', {}],
  ])('a static bootstrap with %s', async (_label, raw) => {
    await expectValid(buildStaticBootstrap(meshConfig(raw), certs));
  });

  it.each([true, false])('the ADS bootstrap (delta: %s)', async (delta) => {
    await expectValid(buildBootstrap(meshConfig(FULL), { nodeId: 'pod-a', cluster: 'ns-a', delta }));
  });
});

describe('envoy --mode validate rejects', () => {
  it('two filter chains with the same name (the port matcher picks chains by name), so the checks above mean something', async () => {
    const bad = buildStaticBootstrap(meshConfig(FULL), certs);
    const inbound = ((bad['static_resources'] as Record<string, JsonObject[]>)['listeners'] ?? [])[0] as JsonObject;
    const chains = inbound['filter_chains'] as JsonObject[];
    const last = chains.at(-1) as JsonObject;
    const name = last['name'] as string;
    chains.push({ ...last });
    const r = await validateBootstrap(bad, mkdtempSync(path.join(dir, 'run-')));
    expect(r.output).toContain(`"name" field is duplicated with value '${name}'`);
    expect(r.ok).toBe(false);
  });
});
