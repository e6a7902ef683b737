// Policy routing for TPROXY: packets carrying meshlet's mark look up a table
// whose only route delivers everything locally (tproxy.rst, "Making non-local
// sockets work"). Plus, for IPv6, the ::6 address Envoy binds for its upstream
// hop to the app. Planning is pure; observe() is the only reader.
import { MARK_HEX, ROUTE_TABLE, RULE_PRIORITY } from './constants.js';
import { UPSTREAM_SOURCE_V6 } from '../config/constants.js';
import type { CommandRunner } from './runner.js';
import type { Family, RoutingSpec } from './types.js';

export interface RoutingState {
  family: Family;
  /** How many copies of meshlet's fwmark rule exist. */
  rules: number;
  /** Whether meshlet's table holds any route. */
  route: boolean;
  /** Whether ::6/128 is on lo (IPv6 only). */
  address: boolean;
}

/** `ip` argument lists; the program is always `ip`. */
export type IpCommand = string[];

const fam = (f: Family): string => (f === 4 ? '-4' : '-6');
const defaultDst = (f: Family): string => (f === 4 ? '0.0.0.0/0' : '::/0');
const ruleArgs = (f: Family): string[] => [fam(f), 'rule', 'del', 'fwmark', MARK_HEX, 'lookup', String(ROUTE_TABLE), 'priority', String(RULE_PRIORITY)];
const lo6 = `${UPSTREAM_SOURCE_V6}/128`;

/** One command, and the command that undoes it (if it changed anything). */
export interface RoutingStep {
  cmd: IpCommand;
  undo?: IpCommand;
}

/** What to run to reach `want` from `have`, each step with its undo. */
export function planRouting(want: RoutingSpec | undefined, have: RoutingState): RoutingStep[] {
  const f = have.family;
  if (!want) return planRoutingCleanup(have).map((cmd) => ({ cmd, undo: reverseOf(cmd) }));
  const steps: RoutingStep[] = [];
  if (have.rules === 0) {
    steps.push({ cmd: [fam(f), 'rule', 'add', 'fwmark', want.mark, 'lookup', String(want.table), 'priority', String(want.priority)], undo: ruleArgs(f) });
  }
  for (let i = 1; i < have.rules; i++) steps.push({ cmd: ruleArgs(f) });
  // replace is idempotent; the table is ours alone.
  const route: RoutingStep = { cmd: [fam(f), 'route', 'replace', 'local', defaultDst(f), 'dev', 'lo', 'table', String(want.table)] };
  if (!have.route) route.undo = [fam(f), 'route', 'flush', 'table', String(want.table)];
  steps.push(route);
  if (want.loopbackAddress && !have.address) {
    steps.push({ cmd: ['-6', 'addr', 'add', want.loopbackAddress, 'dev', 'lo'], undo: ['-6', 'addr', 'del', want.loopbackAddress, 'dev', 'lo'] });
  }
  return steps;
}

/** Removes meshlet's rule (every copy), its table's routes and ::6 on lo. */
export function planRoutingCleanup(have: RoutingState): IpCommand[] {
  const f = have.family;
  const out: IpCommand[] = [];
  for (let i = 0; i < have.rules; i++) out.push(ruleArgs(f));
  if (have.route) out.push([fam(f), 'route', 'flush', 'table', String(ROUTE_TABLE)]);
  if (have.address) out.push(['-6', 'addr', 'del', lo6, 'dev', 'lo']);
  return out;
}

/** The command that re-adds what a cleanup command removed. */
function reverseOf(cmd: IpCommand): IpCommand {
  const [f = '-4', what] = cmd;
  if (what === 'rule') return [f, 'rule', 'add', ...cmd.slice(3)];
  if (what === 'route') return [f, 'route', 'replace', 'local', f === '-4' ? defaultDst(4) : defaultDst(6), 'dev', 'lo', 'table', String(ROUTE_TABLE)];
  return ['-6', 'addr', 'add', lo6, 'dev', 'lo'];
}

interface JsonRule {
  priority?: number;
  fwmark?: string;
  table?: string;
}
interface JsonLink {
  addr_info?: { local?: string; prefixlen?: number }[];
}

function parseJson<T>(text: string): T[] {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? (v as T[]) : [];
  } catch {
    return [];
  }
}

/** Reads the current state. Returns null when the kernel has no such family. */
export async function observeRouting(runner: CommandRunner, family: Family): Promise<RoutingState | null> {
  const rules = await runner.run('ip', ['-j', fam(family), 'rule', 'show']);
  if (rules.code !== 0) {
    if (/not supported/i.test(rules.stderr)) return null;
    throw new Error(`cannot read policy routing rules: ip ${fam(family)} rule show: ${rules.stderr.trim()}`);
  }
  const ours = parseJson<JsonRule>(rules.stdout).filter((r) => r.priority === RULE_PRIORITY && r.fwmark === MARK_HEX && r.table === String(ROUTE_TABLE));
  // A table that was never filled "does not exist" and exits non-zero.
  const routes = await runner.run('ip', ['-j', fam(family), 'route', 'show', 'table', String(ROUTE_TABLE)]);
  const route = routes.code === 0 && parseJson<unknown>(routes.stdout).length > 0;
  let address = false;
  if (family === 6) {
    const lo = await runner.run('ip', ['-j', '-6', 'addr', 'show', 'dev', 'lo']);
    address = parseJson<JsonLink>(lo.stdout).some((l) => (l.addr_info ?? []).some((a) => a.local === UPSTREAM_SOURCE_V6 && a.prefixlen === 128));
  }
  return { family, rules: ours.length, route, address };
}

export function renderIp(cmd: IpCommand): string {
  return `ip ${cmd.join(' ')}`;
}
