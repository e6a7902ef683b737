// What every row gets from main: the size, the Envoy binary, and a logger for
// progress lines (stderr, so stdout stays the table).
import type { Size } from '../lib/size.js';

export interface Ctx {
  size: Size;
  envoy: string;
  log: (line: string) => void;
}

/** Runs the cleanups in reverse order, never throwing past one that fails. */
export class Cleanup {
  private readonly steps: (() => unknown)[] = [];

  add(step: () => unknown): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    while (this.steps.length > 0) {
      try {
        await this.steps.pop()?.();
      } catch {
        /* keep cleaning up */
      }
    }
  }
}

export const ms = (v: number): string => (Number.isFinite(v) ? `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ms` : 'n/a');
export const x = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}×` : 'n/a');
