// The container's log is JSON lines whoever wrote them: meshlet's own lines
// on stdout, Envoy's own on stderr through --log-format, in UTC.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cleanupPod, makePod, until, waitReady, MESHLET } from '../helpers/meshlet.js';
import { cannotRun } from '../helpers/gate.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const ENVOY = '/usr/local/bin/envoy';
const cleanups = cleanupAfterEach();

describe.skipIf(cannotRun('logs', existsSync(ENVOY) ? undefined : `no Envoy at ${ENVOY} (scripts/setup.sh installs it)`))('logs', () => {
  it("every line on stdout and stderr is a JSON object; Envoy's carry app envoy and a UTC time", async () => {
    const p = await makePod();
    cleanups.push(() => cleanupPod(p));
    // A time zone far from UTC: Envoy's timestamps must still be UTC.
    const child = spawn(
      process.execPath,
      [...MESHLET, 'run', '--config', p.configPath, '--skip-iptables-check', '--drain-seconds', '0', '--envoy', ENVOY, '--envoy-log-level', 'info'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, TZ: 'Pacific/Kiritimati' },
      },
    );
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Ready, or meshlet's own words on why not (an exit before ready shows its output).
    await Promise.race([
      waitReady(p),
      exited.then(() => {
        throw new Error(
          `meshlet run exited (${child.exitCode ?? child.signalCode}) before /ready:\nstdout: ${stdout.slice(-3000)}\nstderr: ${stderr.slice(-3000)}`,
        );
      }),
    ]).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\nstdout: ${stdout.slice(-3000)}\nstderr: ${stderr.slice(-3000)}`);
    });
    await until('an Envoy log line on stderr', () => (stderr.includes('"app":"envoy"') ? true : undefined));
    child.kill('SIGTERM');
    await exited;

    const parse = (stream: string, text: string): Record<string, unknown>[] =>
      text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            throw new Error(`${stream}: not a JSON line: ${l}`);
          }
        });
    const out = parse('stdout', stdout);
    const err = parse('stderr', stderr);
    expect(out.every((l) => l['app'] === 'meshlet' && typeof l['level'] === 'number')).toBe(true);
    const envoy = err.filter((l) => l['app'] === 'envoy');
    expect(envoy.length).toBeGreaterThan(0);
    for (const l of envoy) {
      expect(l['component']).toBe('envoy');
      for (const k of ['level', 'logger', 'msg']) expect(typeof l[k], k).toBe('string');
      expect(String(l['time'])).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    }
    // UTC, not Kiritimati's +14:00: Envoy's first line and meshlet's "envoy started" are the same hour.
    const started = out.find((l) => l['msg'] === 'envoy started');
    const gapHours = Math.abs(Date.parse(String(envoy[0]!['time'])) - Date.parse(String(started?.['time']))) / 3_600_000;
    expect(gapHours).toBeLessThan(1);
  });
});
