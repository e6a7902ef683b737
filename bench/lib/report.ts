// Renders the results: a plain-text table for the terminal and RESULTS.md.
import type { Machine } from './machine.js';
import type { Metric, RowResult } from './result.js';
import type { Size } from './size.js';

function num(v: number, unit: string): string {
  if (!Number.isFinite(v)) return 'n/a';
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return unit === 'count' ? String(Math.round(v)) : v.toFixed(digits);
}

function metricCells(m: Metric): string[] {
  const s = m.summary;
  return [m.name, m.unit, String(s.n), num(s.median, m.unit), num(s.p99, m.unit), num(s.min, m.unit), num(s.max, m.unit)];
}

const verdict = (met: boolean | undefined): string => (met === undefined ? 'not measured' : met ? 'met' : 'MISSED');

function textTable(rows: string[][]): string {
  const widths = rows.reduce<number[]>((w, r) => r.map((c, i) => Math.max(w[i] ?? 0, c.length)), []);
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')).join('\n');
}

export function renderText(results: readonly RowResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    out.push(`\n== ${r.title} (${r.seconds.toFixed(0)} s)${r.error ? `  FAILED: ${r.error.split('\n')[0] ?? ''}` : ''}`);
    if (r.metrics.length > 0) out.push(textTable([['metric', 'unit', 'n', 'median', 'p99', 'min', 'max'], ...r.metrics.map(metricCells)]));
    for (const q of r.ratios) out.push(`  ratio ${q.name}: ${num(q.value, 'x')}× (${q.basis})`);
  }
  out.push('\n== Targets');
  out.push(textTable([['what', 'target', 'figure', 'verdict'], ...results.flatMap((r) => r.targets.map((t) => [t.what, t.target, t.figure, verdict(t.met)]))]));
  return `${out.join('\n')}\n`;
}

const md = (cells: string[]): string => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;

export function renderMarkdown(results: readonly RowResult[], machine: Machine, size: Size, date: Date, endLoadAvg: number): string {
  const out: string[] = [
    '# meshlet benchmark results',
    '',
    'Written by `npm run bench` (bench/main.ts). Every comparison is a ratio against a baseline measured in the same run on the same machine; absolute figures only compare within one run.',
    '',
    `- date: ${date.toISOString()}`,
    `- size: ${size.name}`,
    `- machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB memory, Linux ${machine.kernel}`,
    `- Envoy ${machine.envoy}, Node.js ${machine.node}`,
    `- 1-minute load average: ${machine.loadAvg} at the start, ${endLoadAvg} at the end (other work on the machine skews absolute figures; ratios within a row less so)`,
    '',
    '## Targets',
    '',
    md(['what', 'target', 'figure', 'verdict']),
    md(['---', '---', '---', '---']),
    ...results.flatMap((r) => r.targets.map((t) => md([t.what, t.target, t.figure, verdict(t.met)]))),
  ];
  for (const r of results) {
    out.push('', `## ${r.title}`, '', `Took ${r.seconds.toFixed(0)} s.`);
    if (r.error) out.push('', `**Failed:** \`${r.error.split('\n')[0] ?? ''}\``);
    if (r.metrics.length > 0) {
      out.push(
        '',
        md(['metric', 'unit', 'n', 'median', 'p99', 'min', 'max']),
        md(['---', '---', '---:', '---:', '---:', '---:', '---:']),
        ...r.metrics.map((m) => md(metricCells(m))),
      );
    }
    if (r.ratios.length > 0) out.push('', ...r.ratios.map((q) => `- ratio **${q.name}**: ${num(q.value, 'x')}× (${q.basis})`));
    if (r.notes.length > 0) out.push('', ...r.notes.map((n) => `- ${n}`));
  }
  return `${out.join('\n')}\n`;
}
