// A one-port policy edit in tproxy mode, through a real meshlet, its Envoy and
// meshlet init's iptables rules in network namespaces. Ports that share a
// policy share a filter chain, and a port matcher picks the chain, so moving
// one port to another policy must reach Envoy as an in-place update of the
// inbound listener: a connection held open on another port keeps working
// across the edit, the edited port enforces its new policy at once, and the
// weaker chain it left is drained (renamed), not kept for the other port.
//
//   api      tproxy, default mtls; 8080 mtls, 9000 tls (then mtls), 9100 tls; an app
//            that keeps connections open (fixtures/keepalive-app.ts)
//   outside  a namespace outside the pod: the held client and the probes
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailable, MeshLab, type Host, type Pod } from '../../src/demo/lab.js';
import type { Proc } from '../../src/demo/proc.js';
import { cannotRun } from '../helpers/gate.js';
import { makeClients, marker, startOrClose, type Clients } from './support.js';

const skip = cannotRun('a one-port policy edit in tproxy mode', labUnavailable());
const HERE = path.dirname(fileURLToPath(import.meta.url));
const HELD = path.join(HERE, 'fixtures', 'held-client.ts');
const APP = path.join(HERE, 'fixtures', 'keepalive-app.ts');
const REPO = path.resolve(HERE, '..', '..');
const PORTS = (rawPolicy: 'tls' | 'mtls'): Record<string, unknown>[] => [
  { name: 'web', port: 8080, policy: 'mtls' },
  { name: 'raw', port: 9000, policy: rawPolicy },
  // Keeps a tls port after the edit: the tls chain outlives it, so only meshlet's renaming makes Envoy drain it.
  { name: 'other', port: 9100, policy: 'tls' },
];

describe.skipIf(skip)('a one-port policy edit in tproxy mode', () => {
  let lab: MeshLab;
  let api: Pod;
  let outside: Host;
  let clients: Clients;

  beforeAll(async () => {
    lab = await MeshLab.create({
      // No lab app: it closes every connection, and this test holds one open.
      pods: [{ name: 'api', config: { ingress: { mode: 'tproxy', default: 'mtls', ports: PORTS('tls') } } }],
      hosts: [{ name: 'outside' }],
    });
    await startOrClose(lab, async () => {
      api = lab.pod('api');
      outside = lab.host('outside');
      clients = await makeClients(lab);
      const app = lab.ns.spawn(api.ns, 'keep-alive app', [process.execPath, '--import', 'tsx', APP, '8080', '9000'], { cwd: REPO });
      let up = 0;
      await app.waitFor((l) => l.includes('"ev":"listening"') && ++up === 2, 15_000, 'the keep-alive app listening on 8080 and 9000');
    });
  }, 120_000);

  afterAll(async () => {
    expect((await lab?.close()) ?? []).toEqual([]);
  }, 60_000);

  /** Sends one request on the held connection and waits for its answer. */
  const ask = async (held: Proc, label: string): Promise<void> => {
    const p = `/${marker(label)}`;
    const from = held.lines.length;
    held.write(`${p}\n`);
    let i = 0;
    await held.waitFor((l) => i++ >= from && (l.includes(p) || l.includes('"ev":"closed"')), 10_000, `the answer to ${p} on the held connection`);
    expect(held.lines.slice(from).join('\n')).toContain(`"ev":"answer","path":"${p}"`);
  };

  const status = async (port: number, tlsFiles: Clients['mesh'] | Clients['none']): Promise<number | undefined> =>
    (await lab.http(outside, api.v4, port, `/${marker(`p${port}`)}`, { tls: { ...tlsFiles, servername: 'api-svc' } })).status;

  it('moves port 9000 from tls to mtls in place: a connection held open on 8080 keeps working, and 9000 demands a client certificate at once', async () => {
    const held = lab.ns.spawn(
      outside.ns,
      'held client',
      [process.execPath, '--import', 'tsx', HELD, JSON.stringify({ host: api.v4, port: 8080, ...clients.mesh, servername: 'api-svc' })],
      { cwd: REPO },
    );
    try {
      await held.waitFor((l) => l.includes('"ev":"connected"'), 15_000, 'the held client connected over mTLS');
      await ask(held, 'before');
      expect(await status(9000, clients.none)).toBe(200);

      const inPlace = await lab.envoyStat(api, 'listener_manager.listener_in_place_updated');
      const file = api.configPath!;
      const cfg = parse(readFileSync(file, 'utf8')) as { ingress: Record<string, unknown> };
      const mark = api.meshlet!.lines.length;
      writeFileSync(`${file}.tmp`, stringify({ ...cfg, ingress: { ...cfg.ingress, ports: PORTS('mtls') } }));
      renameSync(`${file}.tmp`, file);
      let i = 0;
      await api.meshlet!.waitFor((l) => i++ >= mark && /"msg":"reload (applied|refused)/.test(l), 15_000, 'the reload');
      expect(api.meshlet!.lines.slice(mark).join('\n')).not.toContain('reload refused');
      await lab.waitReady(api);

      // Envoy took the edit as a filter-chain-only update: no chain the held connection uses was replaced or drained.
      expect(await lab.envoyStat(api, 'listener_manager.listener_in_place_updated')).toBe(inPlace + 1);
      // 9000 moved to a stricter policy, so the tls chain it left (still 9100's) was renamed: Envoy drains the old one, with any
      // connection 9000 accepted without a client certificate, while the mtls chain of the held connection is untouched.
      expect(await lab.envoyStat(api, 'listener_manager.total_filter_chains_draining')).toBe(1);
      await ask(held, 'after');
      expect(held.lines.join('\n')).not.toContain('"ev":"closed"');

      // The edited port: no certificate is refused now, a mesh certificate is accepted; 8080 is unchanged.
      expect(await status(9000, clients.none)).toBeUndefined();
      expect(await status(9000, clients.mesh)).toBe(200);
      expect(await status(8080, clients.none)).toBeUndefined();
      expect(await status(8080, clients.mesh)).toBe(200);
    } finally {
      await held.stop();
    }
  });
});
