// `meshlet init --verify` inside a pod namespace, on both backends: every
// check passes when the rules work, and a broken rule fails it loudly.
import { describe, expect, it } from 'vitest';
import { runInit } from '../../src/iptables/init.js';
import { runVerify } from '../../src/iptables/verify.js';
import { netnsUnavailable } from '../helpers/netns.js';
import { BACKENDS, useBed } from './harness.js';
import { CASES, config } from './fixtures.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun('verify in namespaces', netnsUnavailable());

describe.skipIf(skip).each(BACKENDS)('verify on %s', (backend) => {
  const t = useBed();

  for (const name of ['full', 'mapped', 'capture', 'tproxy-default-plaintext', 'dns', 'dns-full']) {
    it(`${name}: every check passes and nothing is skipped`, async () => {
      const c = config(CASES[name]);
      const r = await runInit(c, { verify: true }, { ...t.bed.deps(backend), processes: t.lab.starter(t.bed.pod) });
      const failed = r.verify?.checks.filter((x) => x.status !== 'pass') ?? [];
      expect(failed).toEqual([]);
      expect(r.verify?.ok).toBe(true);
      expect(r.verify?.checks.length).toBeGreaterThan(1);
      // The temporary peer namespace and veth are gone again.
      expect(await t.lab.must(t.bed.pod, ['ip', '-o', 'link'])).not.toMatch(/mlv[0-9a-f]{6}p/);
    });
  }

  it('fails, naming the check, when the TPROXY rule is missing', async () => {
    const c = config(CASES['tproxy-mixed']);
    await runInit(c, {}, t.bed.deps(backend));
    await t.lab.must(t.bed.pod, [
      `iptables-${backend}`,
      '-w',
      '-t',
      'mangle',
      '-D',
      'MESHLET_INBOUND',
      '-p',
      'tcp',
      '-j',
      'TPROXY',
      '--on-port',
      '15006',
      '--on-ip',
      '0.0.0.0',
      '--tproxy-mark',
      '0x4d4c/0xffffffff',
    ]);
    const report = await runVerify(c, { ...t.bed.deps(backend), processes: t.lab.starter(t.bed.pod) });
    expect(report.ok).toBe(false);
    const failed = report.checks.filter((x) => x.status === 'fail').map((x) => x.name);
    expect(failed).toContain('rules match the config');
    expect(failed).toContain('IPv4 ingress tproxy: inbound TCP reaches port 15006');
    expect(failed).not.toContain('IPv6 ingress tproxy: inbound TCP reaches port 15006');
  });

  it('fails, naming the check, when the DNS redirection or an exemption is missing', async () => {
    const c = config(CASES['dns-full']);
    await runInit(c, {}, t.bed.deps(backend));
    // The IPv6 TCP redirection goes, and uid 1500 loses its exemption.
    await t.lab.must(t.bed.pod, [`ip6tables-${backend}`, '-w', '-t', 'nat', '-D', 'MESHLET_DNS', '-p', 'tcp', '-j', 'DNAT', '--to-destination', '[::1]:5353']);
    await t.lab.must(t.bed.pod, [`iptables-${backend}`, '-w', '-t', 'nat', '-D', 'MESHLET_DNS', '-m', 'owner', '--uid-owner', '1500', '-j', 'RETURN']);
    const report = await runVerify(c, { ...t.bed.deps(backend), processes: t.lab.starter(t.bed.pod) });
    expect(report.ok).toBe(false);
    const failed = report.checks.filter((x) => x.status === 'fail').map((x) => x.name);
    expect(failed).toEqual([
      'rules match the config',
      'IPv4 DNS capture: uid 1500 is exempt',
      'IPv6 DNS capture: TCP 53 from uid 65534 reaches 127.0.0.53:5353',
    ]);
  });

  it('fails clearly when a proxy port is already taken', async () => {
    const c = config(CASES['capture']);
    await runInit(c, {}, t.bed.deps(backend));
    const squatter = t.lab.spawn(t.bed.pod, [
      'python3',
      '-c',
      'import socket,sys;s=socket.socket();s.bind(("0.0.0.0",15001));s.listen();print("up",flush=True);sys.stdin.read()',
    ]);
    await squatter.waitFor((l) => l === 'up', 5000);
    const report = await runVerify(c, { ...t.bed.deps(backend), processes: t.lab.starter(t.bed.pod) });
    expect(report.ok).toBe(false);
    expect(report.checks.map((x) => x.detail).join(' ')).toMatch(/before Envoy starts/);
  });
});
