// init / re-run / cleanup / failure, for real, on both backends: re-runs are
// no-ops, cleanup restores the exact previous state (foreign rules kept), a
// refused rule is named and leaves nothing behind, and the dry run is exactly
// what gets applied.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { detectBackend } from '../../src/iptables/backend.js';
import { runCleanup } from '../../src/iptables/cleanup.js';
import { IptablesApplyError } from '../../src/iptables/errors.js';
import { runInit } from '../../src/iptables/init.js';
import { rulesInPlace } from '../../src/iptables/ready.js';
import type { CommandRunner } from '../../src/iptables/runner.js';
import { NetLab, netnsUnavailable } from '../helpers/netns.js';
import { BACKENDS, addForeignRules, snapshot, useBed } from './harness.js';
import { CASES, config } from './fixtures.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun('lifecycle in namespaces', netnsUnavailable());

const VICTIM = '-A MESHLET_DIVERT -j ACCEPT';

/**
 * Swaps VICTIM for `bad` in the IPv6 texts init feeds (and in the per-rule
 * replay that locates a kernel refusal), keeping line numbers, so the error
 * must point at VICTIM's line.
 */
function breakingV6(runner: CommandRunner, bad: string): CommandRunner {
  return {
    run: (cmd, args, opts) => {
      const input = opts?.input ?? '';
      const isInit = input.startsWith('# meshlet init') || (input.match(/^\*mangle$/gm) ?? []).length > 1;
      if (cmd.startsWith('ip6tables') && cmd.endsWith('-restore') && isInit) {
        return runner.run(cmd, args, { ...opts, input: input.replace(`\n${VICTIM}\n`, `\n${bad}\n`) });
      }
      return runner.run(cmd, args, opts);
    },
  };
}

describe.skipIf(skip).each(BACKENDS)('lifecycle on %s', (backend) => {
  const t = useBed((bed) => addForeignRules(bed.lab, bed.pod, backend));

  it('re-running init changes nothing; cleanup restores the exact previous state', async () => {
    const before = await snapshot(t.lab, t.bed.pod, backend);
    const c = config(CASES['full']);
    await runInit(c, {}, t.bed.deps(backend));
    const once = await snapshot(t.lab, t.bed.pod, backend);
    expect(once).not.toBe(before);
    const again = await runInit(c, {}, t.bed.deps(backend));
    // The second plan adds no jump and no ip rule.
    expect(again.text).not.toMatch(/^-[AI] (PREROUTING|OUTPUT|INPUT) /m);
    expect(again.text).not.toMatch(/rule add/);
    expect(await snapshot(t.lab, t.bed.pod, backend)).toBe(once);
    expect((await rulesInPlace(c, t.bed.deps(backend))).ok).toBe(true);

    await runCleanup({}, t.bed.deps(backend));
    expect(await snapshot(t.lab, t.bed.pod, backend)).toBe(before);
    // A second cleanup has nothing to do.
    expect((await runCleanup({}, t.bed.deps(backend))).changed).toBe(false);
  });

  it('switching modes leaves only the new mode behind', async () => {
    await runInit(config(CASES['full']), {}, t.bed.deps(backend));
    const mapped = config(CASES['mapped']);
    await runInit(mapped, {}, t.bed.deps(backend));
    expect(await rulesInPlace(mapped, t.bed.deps(backend))).toEqual({ ok: true, missing: [] });
    const save = await t.lab.must(t.bed.pod, [`iptables-${backend}-save`]);
    expect(save).not.toMatch(/MESHLET_(INBOUND|OUTBOUND|DIVERT|LOOPGUARD)/);
    expect(await t.lab.must(t.bed.pod, ['ip', 'rule'])).not.toMatch(/0x4d4c/);
  });

  it.each(['full', 'dns-full'])('the dry run is exactly what init applies (%s)', async (name) => {
    const fed: string[] = [];
    const runner = t.bed.deps(backend).runner;
    const spy: CommandRunner = {
      run: (cmd, args, opts) => {
        if (cmd.endsWith('-restore')) fed.push(opts?.input ?? '');
        if (cmd === 'ip' && !args.includes('show')) fed.push(`ip ${args.join(' ')}`);
        return runner.run(cmd, args, opts);
      },
    };
    const c = config(CASES[name]);
    const dry = await runInit(c, { dryRun: true }, { runner: spy, backend });
    expect(fed).toEqual([]);
    expect((await rulesInPlace(c, t.bed.deps(backend))).ok).toBe(false);
    await runInit(c, {}, { runner: spy, backend });
    expect(`# backend: ${backend}\n${fed.map((t) => t.trimEnd()).join('\n')}\n`).toBe(dry.text);
  });

  for (const [what, bad] of [
    ['a line iptables cannot parse', '-A MESHLET_INBOUND -m bogus_match -j RETURN'],
    ['a rule the kernel refuses', '-A MESHLET_INBOUND -j TPROXY --on-port 1 --tproxy-mark 0x1/0x1'],
  ] as const) {
    it(`${what}: the error names the line, and nothing is left changed`, async () => {
      const c = config(CASES['full']);
      const clean = await snapshot(t.lab, t.bed.pod, backend);
      const failing = { runner: breakingV6(t.bed.deps(backend).runner, bad), backend };
      const v6Text = (await runInit(c, { dryRun: true }, t.bed.deps(backend))).plan.families.find((f) => f.family === 6)?.restore ?? '';
      const victimLine = v6Text.split('\n').indexOf(VICTIM) + 1;
      const err = await runInit(c, {}, failing).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(IptablesApplyError);
      const e = err as IptablesApplyError;
      expect(e.details).toMatchObject({ family: 6, line: victimLine, rule: VICTIM, rolledBack: true });
      expect(e.message).toContain(`line ${victimLine} \`${VICTIM}\``);
      expect(e.details.complaint).not.toBe('');
      expect(await snapshot(t.lab, t.bed.pod, backend)).toBe(clean);

      // A failed re-run restores the previous good state, not an empty one.
      await runInit(c, {}, t.bed.deps(backend));
      const good = await snapshot(t.lab, t.bed.pod, backend);
      await expect(runInit(config(CASES['tproxy-mixed']), {}, failing)).rejects.toThrow(IptablesApplyError);
      expect(await snapshot(t.lab, t.bed.pod, backend)).toBe(good);
    });
  }
});

describe.skipIf(skip)('backend detection', () => {
  let lab: NetLab;
  beforeEach(() => {
    lab = new NetLab();
  });
  afterEach(async () => {
    await lab.cleanup();
  });

  it('picks nft unless legacy already holds rules; an override wins', async () => {
    const ns = await lab.netns('detect');
    const runner = lab.runner(ns);
    expect(await detectBackend(runner)).toBe('nft');
    await lab.must(ns, ['ip6tables-legacy', '-w', '-t', 'filter', '-A', 'INPUT', '-p', 'udp', '-j', 'ACCEPT']);
    expect(await detectBackend(runner)).toBe('legacy');
    expect(await detectBackend(runner, 'nft')).toBe('nft');
  });

  it('cleanup with auto removes meshlet rules from both backends', async () => {
    const ns = await lab.netns('both');
    const c = config(CASES['tproxy-mixed']);
    await runInit(c, {}, { runner: lab.runner(ns), backend: 'nft' });
    await runInit(c, {}, { runner: lab.runner(ns), backend: 'legacy' });
    await runCleanup({}, { runner: lab.runner(ns) });
    for (const b of BACKENDS) expect(await lab.must(ns, [`iptables-${b}-save`])).not.toContain('MESHLET_');
  });
});
