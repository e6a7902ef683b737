// What every benchmark row hands back: raw samples per metric, ratios against
// a baseline measured in the same run, and the targets it checks
// (the targets table of bench/RESULTS.md). The report renders these; rows never format output themselves.
import { summarize, type Summary } from './stats.js';

export interface Metric {
  name: string;
  unit: string;
  samples: number[];
  summary: Summary;
}

export interface Ratio {
  name: string;
  value: number;
  /** How it was computed, e.g. "median meshlet / median static". */
  basis: string;
}

export interface TargetCheck {
  what: string;
  target: string;
  figure: string;
  /** undefined when the row could not measure it. */
  met: boolean | undefined;
}

export interface RowResult {
  id: string;
  title: string;
  metrics: Metric[];
  ratios: Ratio[];
  targets: TargetCheck[];
  /** Method notes and choices, written into RESULTS.md. */
  notes: string[];
  /** Set when the row failed; the other rows still run. */
  error?: string;
  seconds: number;
}

export class RowBuilder {
  readonly metrics: Metric[] = [];
  readonly ratios: Ratio[] = [];
  readonly targets: TargetCheck[] = [];
  readonly notes: string[] = [];

  constructor(
    readonly id: string,
    readonly title: string,
  ) {}

  metric(name: string, unit: string, samples: readonly number[]): Summary {
    const summary = summarize(samples);
    this.metrics.push({ name, unit, samples: [...samples], summary });
    return summary;
  }

  ratio(name: string, value: number, basis: string): number {
    this.ratios.push({ name, value, basis });
    return value;
  }

  target(what: string, target: string, figure: string, met: boolean | undefined): void {
    this.targets.push({ what, target, figure, met });
  }

  /** Of the metrics whose name starts with `prefix`, the one with the largest median. */
  largest(prefix: string): Metric | undefined {
    return this.metrics
      .filter((m) => m.name.trimStart().startsWith(prefix) && Number.isFinite(m.summary.median))
      .sort((a, b) => b.summary.median - a.summary.median)[0];
  }

  /** A note naming the largest of the metrics starting with `prefix`. */
  noteLargest(prefix: string, what: string): void {
    const m = this.largest(prefix);
    if (m) this.note(`Largest ${what}: "${m.name.trim()}", median ${m.summary.median.toFixed(m.summary.median < 10 ? 2 : 0)} ${m.unit}.`);
  }

  note(text: string): void {
    this.notes.push(text);
  }

  result(seconds: number, error?: string): RowResult {
    return {
      id: this.id,
      title: this.title,
      metrics: this.metrics,
      ratios: this.ratios,
      targets: this.targets,
      notes: this.notes,
      seconds,
      ...(error === undefined ? {} : { error }),
    };
  }
}
