// Runs the shared log cases through a logger factory that writes to a file
// descriptor, and returns what each case wrote: the same harness made the pino
// fixtures and checks meshlet's logger against them.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CASES, FROZEN_NOW, type CaseLogger } from './cases.js';

export type FdLoggerFactory = (level: string, fd: number) => CaseLogger;

export function runCases(make: FdLoggerFactory): Record<string, string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-log-cases-'));
  const realNow = Date.now;
  const out: Record<string, string> = {};
  try {
    Date.now = () => FROZEN_NOW;
    CASES.forEach((c, i) => {
      const file = path.join(dir, `case-${i}.log`);
      const fd = openSync(file, 'w');
      try {
        c.call(make(c.level ?? 'trace', fd));
      } finally {
        closeSync(fd);
      }
      out[c.name] = readFileSync(file, 'utf8');
    });
  } finally {
    Date.now = realNow;
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
