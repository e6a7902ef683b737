// A sidecar-only restart with a config that needs other iptables rules than
// the ones `meshlet init` installed: /ready stays 503 and says to roll the
// pod. Real rules in a network namespace the test creates; real meshlet.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { NetLab, netnsUnavailable } from '../helpers/netns.js';
import { cleanupPod, makePod, until, type Pod, MESHLET } from '../helpers/meshlet.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun('sidecar restart with a config init did not apply', netnsUnavailable());
const lab = new NetLab('mrr');
let ns = '';
const pods: Pod[] = [];

describe.skipIf(skip)('sidecar restart with a config init did not apply', () => {
  beforeAll(async () => {
    ns = await lab.netns('pod');
  });
  afterEach(() => {
    for (const p of pods.splice(0)) cleanupPod(p);
  });
  afterAll(async () => {
    await lab.cleanup();
  });

  it('is never ready, and the readiness detail says to roll the pod', async () => {
    const p = await makePod();
    pods.push(p);
    const write = (name: string, port: number): string => {
      const file = path.join(p.dir, name);
      writeFileSync(file, stringify({ ...p.config, ingress: { mode: 'tproxy', ports: [{ name: 'metrics', port, policy: 'plaintext' }] } }));
      return file;
    };
    const installed = write('a.yaml', 8080);
    const edited = write('b.yaml', 9090);
    await lab.must(ns, [process.execPath, ...MESHLET, 'init', '--config', installed]);
    // The restarted sidecar runs with the edited config (no Envoy needed to see the rules verdict).
    lab.spawn(ns, [process.execPath, ...MESHLET, 'run', '--config', edited, '--no-envoy']);
    const detail = await until('a /ready answer with an iptables verdict', async () => {
      const r = await lab.exec(ns, [process.execPath, ...MESHLET, 'wait-ready', '--config', edited, '--timeout', '0']);
      expect(r.code).not.toBe(0);
      return /"iptables"/.test(r.stderr) ? r.stderr : undefined;
    });
    const report = JSON.parse(detail.slice(detail.indexOf('{'))) as { ready: boolean; checks: { iptables: { ok: boolean; detail: string } } };
    expect(report.ready).toBe(false);
    expect(report.checks.iptables.ok).toBe(false);
    expect(report.checks.iptables.detail).toMatch(/9090/);
    expect(report.checks.iptables.detail).toMatch(/roll the pod \(kubectl rollout restart deployment\/NAME\)/);
  });
});
