// The pure parts: planning against a saved state, jump bookkeeping, address
// spelling, multiport splitting, routing plans, and the order runInit
// executes things in (with a fake runner).
import { describe, expect, it } from 'vitest';
import { canonicalCidr, cidrContains, formatV6, parseV6 } from '../../src/iptables/addr.js';
import { IptablesApplyError } from '../../src/iptables/errors.js';
import { familyRules } from '../../src/iptables/generate.js';
import { runInit } from '../../src/iptables/init.js';
import { portGroups } from '../../src/iptables/multiport.js';
import { diffTables, jumpsNotFirst } from '../../src/iptables/ready.js';
import { jumpChanges, planCleanup, planRestore } from '../../src/iptables/restore.js';
import { reportedLine } from '../../src/iptables/restore-run.js';
import { planRouting } from '../../src/iptables/routing.js';
import type { CommandResult, CommandRunner } from '../../src/iptables/runner.js';
import { ourTables, parseSave } from '../../src/iptables/save.js';
import type { TableSpec } from '../../src/iptables/types.js';
import { parseCidr } from '../../src/config/net.js';
import type { Cidr } from '../../src/config/model.js';
import { CASES, config } from './fixtures.js';

/** What iptables-save would show after applying `tables` on top of `foreign`. */
function saveOf(tables: readonly TableSpec[], foreign = ''): string {
  const out: string[] = [];
  for (const t of tables) {
    out.push(`*${t.table}`, ':OUTPUT ACCEPT [0:0]', ...t.chains.map((c) => `:${c.name} - [0:0]`));
    if (foreign) out.push(foreign);
    out.push(...t.jumps, ...t.chains.flatMap((c) => c.rules), 'COMMIT');
  }
  return out.join('\n');
}

const cidr = (s: string): Cidr => parseCidr(s) as Cidr;

describe('planRestore', () => {
  const want = familyRules(config(CASES['full']), 4).tables;

  it('on a fresh state declares every chain, fills it and adds each jump once', () => {
    const text = planRestore(want, new Map());
    // At the top of their built-in chains, numbered per chain in the generator's order.
    expect(text.match(/^-I (PREROUTING|OUTPUT) \d+ /gm)).toEqual(['-I PREROUTING 1 ', '-I OUTPUT 1 ', '-I OUTPUT 1 ', '-I OUTPUT 2 ']);
    expect(text).not.toMatch(/^-A (PREROUTING|OUTPUT) /m);
    expect(text).not.toMatch(/^-[DX] /m);
  });

  it('on its own result adds no jump and deletes nothing', () => {
    const state = parseSave(saveOf(want));
    const text = planRestore(want, state);
    expect(text).not.toMatch(/^-[AI] (PREROUTING|OUTPUT|INPUT) /m);
    expect(text).not.toMatch(/^-[DX] /m);
    expect(diffTables(want, ourTables(state))).toEqual([]);
    expect(jumpsNotFirst(want, state)).toEqual([]);
  });

  it('a foreign rule above our jump: readiness names it, and a re-run moves our jumps back to the top', () => {
    const foreign = '-A PREROUTING -p tcp -m tcp --dport 9000 -j ACCEPT';
    const mangle = want.find((t) => t.table === 'mangle')!;
    const text = [
      '*mangle',
      ':PREROUTING ACCEPT [0:0]',
      ...mangle.chains.map((c) => `:${c.name} - [0:0]`),
      foreign,
      ...mangle.jumps,
      ...mangle.chains.flatMap((c) => c.rules),
      'COMMIT',
      saveOf(want.filter((t) => t.table !== 'mangle')),
    ].join('\n');
    const state = parseSave(text);
    expect(diffTables(want, ourTables(state))).toEqual([]);
    expect(jumpsNotFirst(want, state)).toEqual([`mangle: meshlet's jumps are not the first rules of PREROUTING (first is "${foreign}"); re-run meshlet init`]);
    const plan = planRestore(want, state);
    expect(plan).toContain('-D PREROUTING -p tcp -j MESHLET_INBOUND\n');
    expect(plan).toContain('-I PREROUTING 1 -p tcp -j MESHLET_INBOUND\n');
    expect(plan).not.toContain('--dport 9000');
    // Only the disturbed chain is touched.
    expect(plan).not.toMatch(/^-[DI] OUTPUT /m);
  });

  it('removes duplicate and stale jumps and deletes stale chains, leaving foreign rules alone', () => {
    const stale: TableSpec = { table: 'filter', chains: [{ name: 'MESHLET_OLD', rules: ['-A MESHLET_OLD -j RETURN'] }], jumps: ['-A INPUT -j MESHLET_OLD'] };
    const dup = want.map((t) => ({ ...t, jumps: [...t.jumps, ...t.jumps] }));
    const text = planRestore(want, parseSave(saveOf([...dup, stale], '-A OUTPUT -p udp -j OTHER')));
    expect(text).toContain('-D INPUT -j MESHLET_OLD');
    expect(text).toContain('-X MESHLET_OLD');
    // Every jump of ours in a disturbed chain goes, then the wanted ones go back on top.
    expect(text.match(/^-D OUTPUT -p tcp -j MESHLET_OUTBOUND$/gm)).toHaveLength(2);
    expect(text.match(/^-I OUTPUT 1 -p tcp -j MESHLET_OUTBOUND$/gm)).toHaveLength(1);
    expect(text).not.toContain('OTHER');
  });

  it('cleanup deletes every jump before the chains it references', () => {
    const text = planCleanup(parseSave(saveOf(want, '-A OUTPUT -p udp -j OTHER')));
    for (const section of text.split('COMMIT\n').filter((x) => x.trim() !== '')) {
      const lines = section.split('\n');
      const lastD = Math.max(...lines.map((l, i) => (l.startsWith('-D ') ? i : -1)));
      expect(lines.findIndex((l) => l.startsWith('-X '))).toBeGreaterThan(lastD);
    }
    expect(text).not.toContain('OTHER');
    // DIVERT, INBOUND, OUTBOUND, LOOPGUARD, EGRESS.
    expect(text.match(/^-X /gm)).toHaveLength(5);
  });

  it('jumpChanges leaves a chain alone only when it starts with exactly the wanted jumps', () => {
    const a = '-A OUTPUT -p tcp -j MESHLET_A';
    const b = '-A OUTPUT -p udp -j MESHLET_B';
    const other = '-A OUTPUT -j OTHER';
    expect(jumpChanges([a, b], [a, b, other])).toEqual({ remove: [], insert: [] });
    expect(jumpChanges([a, b], [a, a, other])).toEqual({ remove: [a, a], insert: ['-I OUTPUT 1 -p tcp -j MESHLET_A', '-I OUTPUT 2 -p udp -j MESHLET_B'] });
    expect(jumpChanges([a, b], [other, a, b])).toEqual({ remove: [a, b], insert: ['-I OUTPUT 1 -p tcp -j MESHLET_A', '-I OUTPUT 2 -p udp -j MESHLET_B'] });
    expect(jumpChanges([a, b], [b, a])).toEqual({ remove: [b, a], insert: ['-I OUTPUT 1 -p tcp -j MESHLET_A', '-I OUTPUT 2 -p udp -j MESHLET_B'] });
    // A jump of ours further down counts as disturbed too (it would be stale).
    expect(jumpChanges([a], [a, other, b])).toEqual({ remove: [a, b], insert: ['-I OUTPUT 1 -p tcp -j MESHLET_A'] });
  });

  it('diffTables names what is missing, unexpected or duplicated', () => {
    const have: TableSpec[] = [{ table: 'nat', chains: [{ name: 'MESHLET_OUTBOUND', rules: ['-A MESHLET_OUTBOUND -j RETURN'] }], jumps: [] }];
    const d = diffTables(familyRules(config(CASES['portless']), 4).tables, have);
    expect(d).toContain('nat: unexpected rule "-A MESHLET_OUTBOUND -j RETURN"');
    expect(d).toContain('nat: missing jump "-A OUTPUT -p tcp -j MESHLET_OUTBOUND"');
    expect(d).toContain('filter: missing chain MESHLET_LOOPGUARD');
  });
});

describe('addresses and ports', () => {
  it.each([
    ['198.18.6.7/24', '198.18.6.0/24'],
    ['198.19.0.1', '198.19.0.1/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['2001:db8:6:0:1::/48', '2001:db8:6::/48'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1/128'],
    ['::ffff:198.18.0.1', '::ffff:198.18.0.1/128'],
    ['fe80::1:0:0:1/64', 'fe80::/64'],
    ['2001:db8:0:1:0:0:0:1/128', '2001:db8:0:1::1/128'],
  ])('%s is spelled %s', (input, out) => expect(canonicalCidr(cidr(input))).toBe(out));

  it('formats like inet_ntop', () => {
    expect(formatV6(parseV6('1:0:1:0:0:1:0:1'))).toBe('1:0:1::1:0:1');
    expect(formatV6(parseV6('1:0:0:1:0:0:1:1'))).toBe('1::1:0:0:1:1');
    expect(formatV6(parseV6('::'))).toBe('::');
    expect(formatV6(parseV6('::6'))).toBe('::6');
  });

  it('cidrContains', () => {
    expect(cidrContains(cidr('198.18.0.0/15'), '198.19.255.254')).toBe(true);
    expect(cidrContains(cidr('198.18.0.0/16'), '198.19.255.254')).toBe(false);
    expect(cidrContains(cidr('2001:db8::/32'), '2001:db8:ffff::2')).toBe(true);
    expect(cidrContains(cidr('2001:db8::/32'), '198.18.0.1')).toBe(false);
  });

  it('splits ports into sorted groups of at most 15', () => {
    const groups = portGroups([...Array.from({ length: 31 }, (_, i) => 100 - i), 100]);
    expect(groups.map((g) => g.length)).toEqual([15, 15, 1]);
    expect(groups[0]?.[0]).toBe(70);
  });

  it('reads the failing line from both backends', () => {
    expect(reportedLine('iptables-nft-restore v1.8.9 (nf_tables): \nline 4: RULE_APPEND failed (Invalid argument)')).toBe(4);
    expect(reportedLine('iptables-restore: line 5 failed')).toBe(5);
    expect(reportedLine('...\nError occurred at line: 8\nTry ...')).toBe(8);
  });
});

describe('planRouting', () => {
  const spec = familyRules(config(CASES['full']), 6).routing;
  it('adds only what is missing, each step with its undo', () => {
    const fresh = planRouting(spec, { family: 6, rules: 0, route: false, address: false });
    expect(fresh.map((s) => s.cmd.slice(0, 3).join(' '))).toEqual(['-6 rule add', '-6 route replace', '-6 addr add']);
    expect(fresh.every((s) => s.undo)).toBe(true);
    const again = planRouting(spec, { family: 6, rules: 1, route: true, address: true });
    expect(again.map((s) => s.cmd.slice(0, 3).join(' '))).toEqual(['-6 route replace']);
    expect(again[0]?.undo).toBeUndefined();
  });
  it('removes duplicates and everything when no longer wanted', () => {
    expect(planRouting(spec, { family: 4, rules: 3, route: true, address: false }).filter((s) => s.cmd[2] === 'del')).toHaveLength(2);
    expect(planRouting(undefined, { family: 6, rules: 1, route: true, address: true }).map((s) => s.cmd.slice(1, 3).join(' '))).toEqual([
      'rule del',
      'route flush',
      'addr del',
    ]);
  });
});

/** A fake system: records calls, answers reads, fails on demand. */
function fakeRunner(failOn?: (cmd: string, input: string) => boolean): { runner: CommandRunner; calls: string[] } {
  const calls: string[] = [];
  const ok = (stdout = ''): CommandResult => ({ code: 0, stdout, stderr: '' });
  const runner: CommandRunner = {
    run(cmd, args, opts) {
      const input = opts?.input ?? '';
      if (cmd.endsWith('-save')) return Promise.resolve(ok(args.includes('--version') ? 'v1.8.9' : ''));
      if (cmd === 'ip' && args.includes('show')) return Promise.resolve(ok('[]'));
      calls.push(cmd === 'ip' ? `ip ${args.join(' ')}` : `${cmd}${input.startsWith('# meshlet init') ? ' (init)' : ' (rollback)'}`);
      if (failOn?.(cmd, input)) return Promise.resolve({ code: 2, stdout: '', stderr: `${cmd}: Couldn't load target \`X'\n\nError occurred at line: 4\n` });
      return Promise.resolve(ok());
    },
  };
  return { runner, calls };
}

describe('runInit order', () => {
  const c = config(CASES['full']);
  it('routing before rules, IPv4 before IPv6; a dry run runs nothing', async () => {
    const dry = fakeRunner();
    await runInit(c, { dryRun: true }, { runner: dry.runner, backend: 'nft' });
    expect(dry.calls).toEqual([]);
    const real = fakeRunner();
    await runInit(c, {}, { runner: real.runner, backend: 'nft' });
    expect(real.calls).toEqual([
      'ip -4 rule add fwmark 0x4d4c lookup 19788 priority 19788',
      'ip -4 route replace local 0.0.0.0/0 dev lo table 19788',
      'iptables-nft-restore (init)',
      'ip -6 rule add fwmark 0x4d4c lookup 19788 priority 19788',
      'ip -6 route replace local ::/0 dev lo table 19788',
      'ip -6 addr add ::6/128 dev lo',
      'ip6tables-nft-restore (init)',
    ]);
  });

  it('a refused IPv6 text rolls back both families and undoes routing, newest first', async () => {
    const f = fakeRunner((cmd, input) => cmd === 'ip6tables-nft-restore' && input.startsWith('# meshlet init'));
    const err = await runInit(c, {}, { runner: f.runner, backend: 'nft' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IptablesApplyError);
    expect((err as IptablesApplyError).details).toMatchObject({ family: 6, line: 4, rolledBack: true });
    // With nothing of ours saved before, rolling back the rules is a no-op
    // text-wise here (the fake save is empty), so only routing is undone.
    expect(f.calls.slice(7)).toEqual([
      'ip -6 addr del ::6/128 dev lo',
      'ip -6 route flush table 19788',
      'ip -6 rule del fwmark 0x4d4c lookup 19788 priority 19788',
      'ip -4 route flush table 19788',
      'ip -4 rule del fwmark 0x4d4c lookup 19788 priority 19788',
    ]);
  });
});
