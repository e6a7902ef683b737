// A rebuilt snapshot reuses the encoded form of every resource whose builder
// output did not change, and encodes the changed ones afresh: identical bytes
// and versions to a cold build, either way.
import { describe, expect, it } from 'vitest';
import { buildResources } from '../../src/xds/builders/index.js';
import { buildSnapshot, typeOf } from '../../src/xds/snapshot.js';
import { encodeResource, TYPE_URL } from '../../src/xds/protos.js';
import { FAKE_CERTS, FULL, meshConfig } from '../envoy/configs.js';

describe('snapshot rebuild', () => {
  it('reuses unchanged resources, re-encodes changed ones, and matches a cold encode byte for byte', () => {
    const first = buildSnapshot(buildResources(meshConfig(FULL), FAKE_CERTS));
    const edited = structuredClone(FULL);
    const port = edited.ingress?.ports?.[0];
    if (!port) throw new Error('FULL has no ingress port');
    port.policy = port.policy === 'plaintext' ? 'mtls' : 'plaintext';
    const second = buildSnapshot(buildResources(meshConfig(edited), FAKE_CERTS));
    let reused = 0;
    let fresh = 0;
    for (const t of [TYPE_URL.cluster, TYPE_URL.listener, TYPE_URL.secret]) {
      for (const [name, r] of typeOf(second, t).resources) {
        const before = typeOf(first, t).resources.get(name);
        if (before === r) reused++;
        else fresh++;
        expect(Buffer.from(r.any.value).equals(Buffer.from(encodeResource(r.json))), name).toBe(true);
        if (before && before !== r) expect(before.version, `${name} rebuilt although unchanged`).not.toBe(r.version);
      }
    }
    expect(reused).toBeGreaterThan(0);
    expect(fresh).toBeGreaterThan(0);
    // Equal input, equal snapshot: every resource object is the same one.
    const third = buildSnapshot(buildResources(meshConfig(edited), FAKE_CERTS));
    for (const t of [TYPE_URL.cluster, TYPE_URL.listener, TYPE_URL.secret]) {
      expect(typeOf(third, t).version).toBe(typeOf(second, t).version);
      for (const [name, r] of typeOf(third, t).resources) expect(typeOf(second, t).resources.get(name), name).toBe(r);
    }
  });
});
