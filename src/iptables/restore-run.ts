// Runs one iptables-restore and, when it fails, finds the line it refused.
// iptables-nft reports the rule's line; iptables-legacy reports a kernel
// refusal only at the table's COMMIT line, so for that case the table is
// replayed with one commit per rule to find the culprit.
import type { CommandRunner } from './runner.js';

export const RESTORE_ARGS = ['--noflush', '--wait=10'];

export interface RestoreFailure {
  line?: number;
  rule?: string;
  complaint: string;
}

export async function runRestore(runner: CommandRunner, bin: string, text: string): Promise<RestoreFailure | undefined> {
  const r = await runner.run(bin, RESTORE_ARGS, { input: text });
  if (r.code === 0) return undefined;
  const complaint = cleanComplaint(r.stderr || r.stdout || `exit code ${r.code}`);
  const line = reportedLine(r.stderr);
  const lines = text.split('\n');
  if (line === undefined) return { complaint };
  const rule = lines[line - 1];
  if (rule !== 'COMMIT') return rule === undefined ? { line, complaint } : { line, rule, complaint };
  return (await locateInTable(runner, bin, lines, line)) ?? { line, rule, complaint };
}

export function reportedLine(stderr: string): number | undefined {
  const m = /line:? (\d+)/.exec(stderr);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

function cleanComplaint(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('Try `') && !l.startsWith('Error occurred at line'))
    .join(' ');
}

/**
 * Replays the table that failed at `commitLine`, one rule per commit, and maps
 * the failing commit back to the original line. Runs against the same
 * starting state (the failed table did not commit), and the caller rolls
 * back afterwards either way.
 */
async function locateInTable(runner: CommandRunner, bin: string, lines: string[], commitLine: number): Promise<RestoreFailure | undefined> {
  let start = commitLine - 1;
  while (start > 0 && !(lines[start - 1] ?? '').startsWith('*')) start--;
  const header = lines[start - 1] ?? '';
  const body = lines.slice(start, commitLine - 1);
  const prelude = [header, ...body.filter((l) => l.startsWith(':') || l.startsWith('-D ')), 'COMMIT'];
  const steps = body.map((l, i) => ({ l, at: start + i + 1 })).filter((s) => !s.l.startsWith(':') && !s.l.startsWith('-D ') && !s.l.startsWith('#'));
  const diag = [...prelude];
  const origin: number[] = prelude.map(() => 0);
  for (const s of steps) {
    diag.push(header, s.l, 'COMMIT');
    origin.push(0, s.at, s.at);
  }
  const r = await runner.run(bin, RESTORE_ARGS, { input: `${diag.join('\n')}\n` });
  const at = reportedLine(r.stderr);
  const line = at === undefined ? undefined : origin[at - 1];
  if (r.code === 0 || !line) return undefined;
  return { line, rule: lines[line - 1] ?? '', complaint: cleanComplaint(r.stderr) };
}
