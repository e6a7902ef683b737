// Golden files: the exact restore text and ip commands for every mode and
// both families, as `meshlet init --dry-run` prints them on a fresh pod.
// Regenerate with UPDATE_GOLDEN=1 npx vitest run test/iptables/golden.test.ts
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { binaries } from '../../src/iptables/backend.js';
import { familyRules } from '../../src/iptables/generate.js';
import { renderPlan, type InitPlan } from '../../src/iptables/plan.js';
import { planRestore } from '../../src/iptables/restore.js';
import { RESTORE_ARGS } from '../../src/iptables/restore-run.js';
import { planRouting } from '../../src/iptables/routing.js';
import type { Family } from '../../src/iptables/types.js';
import { CASES, config } from './fixtures.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'golden', 'iptables');

function freshText(raw: unknown, family: Family): string {
  const want = familyRules(config(raw), family);
  const bins = binaries('nft', family);
  const body = planRestore(want.tables, new Map());
  const plan: InitPlan = {
    backend: 'nft',
    skipped: [],
    notes: [],
    families: [
      {
        family,
        bins,
        restore: body === '' ? '' : `# meshlet init: IPv${family}, ${bins.restore} ${RESTORE_ARGS.join(' ')}\n${body}`,
        routing: planRouting(want.routing, { family, rules: 0, route: false, address: false }),
        before: [],
      },
    ],
  };
  return renderPlan(plan);
}

describe('golden rules', () => {
  for (const [name, raw] of Object.entries(CASES)) {
    for (const family of [4, 6] as const) {
      it(`${name} IPv${family}`, () => {
        const file = join(DIR, `${name}.ipv${family}.txt`);
        const text = freshText(raw, family);
        if (process.env['UPDATE_GOLDEN'] === '1' || !existsSync(file)) {
          mkdirSync(DIR, { recursive: true });
          writeFileSync(file, text);
        }
        expect(text).toBe(readFileSync(file, 'utf8'));
      });
    }
  }
});
