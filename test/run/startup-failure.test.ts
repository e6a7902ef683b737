// `meshlet run` exits 1 when a startup step fails after the xDS socket is
// bound, having stopped what it started (the socket, Envoy): those handles
// used to keep the process alive, serving a half-started sidecar until SIGTERM.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { cmdlineOf } from '../helpers/wait.js';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { cleanupPod, makePod, writeConfig, type Pod, MESHLET } from '../helpers/meshlet.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const ENVOY = '/usr/local/bin/envoy';

const cleanups = cleanupAfterEach();

/** Whether `pid` is an Envoy running this pod's bootstrap. */
function envoyOf(pid: number, p: Pod): boolean {
  return cmdlineOf(pid).includes(path.join(p.dir, 'run', 'envoy.json'));
}

describe('meshlet run exits 1 after a startup failure, with what it started stopped', () => {
  async function pod(): Promise<Pod> {
    const p = await makePod();
    cleanups.push(() => cleanupPod(p));
    return p;
  }

  /** Runs `meshlet run` and waits for it to exit by itself; a hang fails the test with the logs. */
  function runUntilExit(p: Pod, args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
    const child = spawn(process.execPath, [...MESHLET, 'run', '--config', p.configPath, '--skip-iptables-check', '--drain-seconds', '0', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        // An Envoy it had started would outlive it; it runs this pod's bootstrap, so it is ours to stop.
        const pid = Number(/"pid":(\d+),"restarts":0,(?:"startedBy":"launcher",)?"msg":"envoy started"/.exec(out)?.[1]);
        if (pid > 0 && envoyOf(pid, p)) process.kill(pid, 'SIGKILL');
        reject(new Error(`meshlet run did not exit within 30 s after a startup failure; output:\n${out}`));
      }, 30_000);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, out });
      });
    });
  }

  it.skipIf(process.getuid?.() !== 0)(
    'the proxy uid cannot read the bootstrap: Envoy exits, the error names it, then exit 1 (the xDS socket was bound)',
    async () => {
      const p = await pod();
      // The bootstrap under a directory only root can search: meshlet writes it, Envoy (uid 1337) cannot open it.
      const locked = path.join(p.dir, 'locked');
      mkdirSync(locked, { mode: 0o700 });
      const bootstrapPath = path.join(locked, 'boot', 'envoy.json');
      writeConfig(p, { ...p.config, proxy: { ...(p.config['proxy'] as Record<string, unknown>), bootstrapPath } });
      const r = await runUntilExit(p, ['--envoy', ENVOY]);
      expect(r.signal).toBeNull();
      expect(r.code).toBe(1);
      expect(r.out).toContain('xDS server listening');
      expect(r.out).toContain('envoy exited; restarting');
      expect(r.out).toContain(`the proxy uid 1337 cannot read the bootstrap ${bootstrapPath}`);
      expect(r.out).not.toContain('cannot execute Envoy');
    },
  );

  it.skipIf(!existsSync(ENVOY))('the debug port is taken: Envoy, already started, is stopped and run exits 1', async () => {
    const p = await pod();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(p.ports.debug, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const r = await runUntilExit(p, ['--envoy', ENVOY]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.out).toContain('envoy started');
    expect(r.out).toMatch(/EADDRINUSE/);
    const pid = Number(/"pid":(\d+),"restarts":0,(?:"startedBy":"launcher",)?"msg":"envoy started"/.exec(r.out)?.[1]);
    expect(pid).toBeGreaterThan(0);
    // Envoy was stopped before meshlet exited: that pid no longer runs this pod's Envoy.
    expect(envoyOf(pid, p)).toBe(false);
  });
});
