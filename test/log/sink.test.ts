// The log sink on real pipes: a reader that falls behind makes meshlet wait,
// never lose or mix a line; a reader that is gone must not take meshlet down.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FdSink } from '../../src/log.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { tmpDirFor } from '../helpers/tmp.js';
import { EventLog } from '../helpers/wait.js';

const CHILD = fileURLToPath(new URL('./sink-child.ts', import.meta.url));
const cleanups = cleanupAfterEach();

function start(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const events = new EventLog<Record<string, unknown>>();
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    const lines = err.split('\n');
    err = lines.pop() ?? '';
    for (const l of lines) events.push(JSON.parse(l) as Record<string, unknown>);
  });
  return { child, exited, events };
}

describe('FdSink on a pipe', () => {
  it('waits for a full non-blocking pipe and writes every line whole and in order', async () => {
    const count = 400;
    const { child, exited, events } = start(['flood', String(count)]);
    // Nothing reads stdout until the writer has hit a full pipe (EAGAIN) and is waiting.
    await events.waitFor((e) => e['event'] === 'waiting', 30_000, 'the child to find the pipe full and wait');
    const chunks: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    const done = await events.waitFor((e) => e['event'] === 'done', 60_000, 'the child to write every line');
    expect(await exited).toBe(0);
    await new Promise<void>((resolve) => (child.stdout.readableEnded ? resolve() : child.stdout.once('end', () => resolve())));
    expect(done['dropped']).toBe(0);
    expect(done['waits'] as number).toBeGreaterThan(0);
    const text = Buffer.concat(chunks).toString('utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.slice(0, -1).split('\n');
    expect(lines).toHaveLength(count);
    lines.forEach((l, i) => {
      const o = JSON.parse(l) as { i: number; payload: string; msg: string };
      expect(o.i).toBe(i);
      const size = i % 7 === 0 ? 200 * 1024 : 100 + ((i * 37) % 3000);
      expect(o.payload).toBe(String.fromCharCode(97 + (i % 26)).repeat(size));
      expect(o.msg).toBe('flood');
    });
  });

  it('keeps meshlet running when the reader is gone (EPIPE): later lines are dropped, once said on stderr', async () => {
    const { child, exited, events } = start(['epipe']);
    // Close the only read end, then let the child log.
    await new Promise<void>((resolve) => {
      child.stdout.once('close', () => resolve());
      child.stdout.destroy();
    });
    child.stdin.write('go\n');
    const survived = await events.waitFor((e) => e['event'] === 'survived', 30_000, 'the child to report after logging into a closed pipe');
    expect(await exited).toBe(0);
    expect(survived).toMatchObject({ closed: 'EPIPE', dropped: 3 });
    const notices = events.items.filter((e) => e['app'] === 'meshlet');
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatchObject({ level: 50, fd: 1, code: 'EPIPE', msg: expect.stringMatching(/^log output failed \(EPIPE\)/) as unknown });
  });
});

describe('FdSink on a bad fd', () => {
  it('does not throw on EBADF, stops writing, and says so once', () => {
    const dir = tmpDirFor(cleanups, 'meshlet-log-sink-');
    const noticePath = `${dir}/notice.log`;
    const noticeFd = openSync(noticePath, 'w');
    try {
      // Far above any open descriptor: never reused by another file while the test runs.
      const sink = new FdSink(1_000_000, { noticeFd });
      expect(() => sink.write('{"a":1}\n')).not.toThrow();
      expect(() => sink.write('{"a":2}\n')).not.toThrow();
      expect(sink.closed).toBe('EBADF');
      expect(sink.dropped).toBe(2);
    } finally {
      closeSync(noticeFd);
    }
    const notices = readFileSync(noticePath, 'utf8').trim().split('\n');
    expect(notices).toHaveLength(1);
    expect(JSON.parse(notices[0] as string)).toMatchObject({ code: 'EBADF', fd: 1_000_000, partial: false });
  });
});
