// The every-feature static bootstrap really starts: each listener binds its
// addresses (transparent ones included) and goes active.
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertState } from '../../src/certs/types.js';
import { buildStaticBootstrap } from '../../src/envoy/static-bootstrap.js';
import type { JsonObject } from '../../src/xds/protos.js';
import { startEnvoy, type EnvoyHandle } from '../helpers/envoy.js';
import { tmpDir } from '../helpers/tmp.js';
import { createTmpCa } from '../helpers/tmp-pki.js';
import { FULL, MAPPED, meshConfig } from './configs.js';
import { NetLab, netnsUnavailable } from '../helpers/netns.js';
import { cannotRun } from '../helpers/gate.js';

interface ListenerStatus {
  name: string;
  local_address: { socket_address: { address: string; port_value: number } };
  additional_local_addresses?: { socket_address: { address: string; port_value: number } }[];
}

describe.skipIf(cannotRun('a static bootstrap boots in a real Envoy', netnsUnavailable()))('a static bootstrap boots in a real Envoy', () => {
  const dir = tmpDir('meshlet-boot-');
  let certs: CertState;
  const lab = new NetLab('meshlet');
  const cleanup: (() => Promise<void> | void)[] = [() => lab.cleanup()];
  beforeAll(async () => {
    const ca = await createTmpCa(path.join(dir, 'pki'));
    certs = ca.certState(await ca.issue('workload'));
  });
  afterAll(async () => {
    for (const f of cleanup.reverse()) await f();
    rmSync(dir, { recursive: true, force: true });
  });

  async function boot(raw: typeof FULL, tag: string): Promise<Map<string, string[]>> {
    const ns = await lab.netns(`boot-${tag}`);
    const bootstrap: JsonObject = { ...buildStaticBootstrap(meshConfig(raw), certs), admin: { address: { pipe: { path: path.join(dir, `${tag}.sock`) } } } };
    const names = ((bootstrap['static_resources'] as Record<string, JsonObject[]>)['listeners'] ?? []).map((l) => l['name'] as string);
    const envoy: EnvoyHandle = await startEnvoy({ bootstrap, dir: mkdtempSync(path.join(dir, `run-${tag}-`)), netns: ns, listeners: names });
    cleanup.push(() => envoy.stop());
    const statuses = (JSON.parse((await envoy.admin('/listeners?format=json')).body) as { listener_statuses: ListenerStatus[] }).listener_statuses;
    const show = (a: ListenerStatus['local_address']): string => `${a.socket_address.address}:${a.socket_address.port_value}`;
    return new Map(statuses.map((s) => [s.name, [show(s.local_address), ...(s.additional_local_addresses ?? []).map(show)]]));
  }

  it('every feature: all listeners active on both families', async () => {
    const active = await boot(FULL, 'full');
    expect(Object.fromEntries(active)).toEqual({
      'meshlet-inbound': ['0.0.0.0:15006', ':::15006'],
      'meshlet-route-emoji': ['127.137.0.1:8081'],
      'meshlet-route-voting': ['127.137.0.5:8081'],
      'meshlet-route-v4ip': ['127.137.0.6:9000'],
      'meshlet-portless': ['127.0.0.1:15002'],
      'meshlet-outbound': ['127.0.0.1:15001', '::1:15001'],
    });
  });

  it('mapped mode: one listener per mapped port on both families', async () => {
    const active = await boot(MAPPED, 'mapped');
    expect(Object.fromEntries(active)).toEqual({
      'meshlet-mapped-web': ['0.0.0.0:18080', ':::18080'],
      'meshlet-mapped-db': ['0.0.0.0:15432', ':::15432'],
    });
  });
});
