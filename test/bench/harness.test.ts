// The benchmark harness runs end to end on the tiny size: every row produces
// figures, no row fails, and the report is written. Benchmarks are not timed
// tests, so no figure is checked against a target here.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { percentile, summarize } from '../../bench/lib/stats.js';
import { parseWrk } from '../../bench/lib/wrk.js';
import { cannotRun } from '../helpers/gate.js';

const MAIN = path.resolve('dist/bench/main.js');
const isRoot = process.getuid?.() === 0;

describe('bench statistics and parsers', () => {
  it('summarizes with nearest-rank percentiles', () => {
    const s = summarize([5, 1, 4, 2, 3]);
    expect(s).toEqual({ n: 5, median: 3, p99: 5, min: 1, max: 5 });
    expect(
      percentile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        99,
      ),
    ).toBe(99);
    expect(summarize([]).n).toBe(0);
  });

  it('reads a wrk report', () => {
    const r = parseWrk(
      [
        'Running 2s test @ http://127.0.1.1:8080/',
        '  Latency Distribution',
        '     50%  412.00us',
        '     99%    2.31ms',
        '  12000 requests in 2.00s, 1.00MB read',
        '  Socket errors: connect 0, read 2, write 0, timeout 1',
        'Requests/sec:   6000.50',
        'Transfer/sec:    512.00KB',
      ].join('\n'),
    );
    expect(r).toEqual({ requestsPerSec: 6000.5, mbPerSec: 0.5, p50Ms: 0.412, p99Ms: 2.31, errors: 3 });
  });
});

describe.skipIf(cannotRun('npm run bench on the tiny size', isRoot ? undefined : 'the bench needs root (namespaces, iptables, Envoy as uid 1337)'))(
  'npm run bench on the tiny size',
  () => {
    it('runs every row and writes the report', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'meshlet-bench-test-'));
      try {
        const out = path.join(dir, 'RESULTS.md');
        // The spawn's timeout bounds the run (a killed run has no exit status); how long it took is the bench's own log line.
        const r = spawnSync(process.execPath, [MAIN, '--tiny', '--out', out], { encoding: 'utf8', timeout: 110_000 });
        // A failed row is named first (its "[bench] row … failed:" line and the error under it), as a long report
        // would push it out of a shortened failure message.
        const failed = r.stderr.slice(Math.max(0, r.stderr.search(/\[bench\] row \S+ failed:/)));
        const head = `exit ${r.status} ${r.signal ?? ''}\n${/failed:/.test(failed) ? failed : ''}`;
        expect(r.status, `${head}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(0);
        for (const title of [
          '1. Baseline',
          '2. Start to ready',
          '3. Config edit',
          '4. Certificate rotation',
          '5. Data path',
          '6. Scale',
          '7. meshlet footprint',
        ]) {
          expect(r.stdout).toContain(title);
        }
        expect(r.stdout).not.toMatch(/FAILED/);
        expect(r.stderr).toMatch(/\[bench\] all rows took \d+\.\d s/);
        const md = readFileSync(out, 'utf8');
        expect(md).toMatch(/^# meshlet benchmark results/);
        expect(md).toMatch(/size: tiny/);
        expect(md).toMatch(/\| start to ready \| ≤ 2× static \(aim 1\.2×\) \|/);
        // The start row's floor (Envoy on the ADS bootstrap with meshlet already serving) and the ratios that split the start.
        expect(md).toMatch(/\| floor: Envoy on the ADS bootstrap, the xDS server already serving: spawn → LIVE and a listener accepts \| ms \| 1 \| \d/);
        expect(md).toMatch(/ratio \*\*floor \/ static start \(what the dynamic config costs Envoy\)\*\*: \d+\.\d+×/);
        expect(md).toMatch(/ratio \*\*meshlet start \/ floor \(what meshlet adds\)\*\*: \d+\.\d+×/);
        // Nothing left behind by this bench process (another run on the machine may hold its own):
        // its pod networks are named mlbench-…-<pid>-…, its lab namespaces mlbench-…-<pid % 46656><4 hex>.
        const pid = r.pid;
        const mine = (name: string): boolean => name.includes(`-${pid.toString(36)}-`) || new RegExp(`-${(pid % 46656).toString(36)}[0-9a-f]{4}$`).test(name);
        const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
          .stdout.split('\n')
          .map((l) => l.split(' ')[0] ?? '')
          .filter((n) => n.startsWith('mlbench-') && mine(n));
        expect(left).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);
  },
);
