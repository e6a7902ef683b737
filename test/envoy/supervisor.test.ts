// The supervisor's restart loop through its Spawner seam: a child that exits
// at once is started again with backoff, and stop() ends the current one.
// The children are real processes (node), only the argv is replaced: an Envoy
// that dies on start cannot be produced on demand otherwise.
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { EnvoySupervisor, systemSpawner, type Spawner } from '../../src/envoy/supervisor.js';
import { createRootLogger } from '../../src/log.js';

const logger = createRootLogger('silent');
let sup: EnvoySupervisor | undefined;
afterEach(async () => {
  await sup?.stop(0, 1_000);
  sup = undefined;
});

function recording(script: string): { spawner: Spawner; argvs: string[][] } {
  const argvs: string[][] = [];
  const spawner: Spawner = {
    ...systemSpawner,
    uid: () => 1337,
    spawn: (argv) => {
      argvs.push([...argv]);
      return spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    },
  };
  return { spawner, argvs };
}

describe('EnvoySupervisor through its Spawner', () => {
  it('builds the argv from the spawner uid and restarts a child that exits', async () => {
    const { spawner, argvs } = recording('process.exit(3)');
    sup = new EnvoySupervisor({
      envoyPath: '/x/envoy',
      bootstrapPath: '/x/b.json',
      uid: 1337,
      gid: 1337,
      adminSocket: '/x/a.sock',
      logger,
      spawner,
      backoff: { initialMs: 10, maxMs: 20, resetAfterMs: 60_000 },
    });
    const exits: (number | null)[] = [];
    const twoExits = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('waited 10 s for the child to exit twice')), 10_000);
      sup!.on('exit', (code) => {
        exits.push(code);
        if (exits.length === 2) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    sup.start();
    await twoExits;
    expect(exits).toEqual([3, 3]);
    // meshlet already runs as the proxy uid: no uid switch, only the parent-death signal.
    expect(argvs[0]!.slice(0, 3)).toEqual(['setpriv', '--pdeathsig=SIGKILL', '--']);
    expect(argvs[0]).toContain('/x/envoy');
  });

  it('stop() without a drain ends a running child', async () => {
    const { spawner } = recording('setInterval(() => {}, 1000)');
    sup = new EnvoySupervisor({ envoyPath: '/x/envoy', bootstrapPath: '/x/b.json', uid: 1337, gid: 1337, adminSocket: '/x/a.sock', logger, spawner });
    const started = new Promise<number>((resolve) => sup!.once('start', (pid) => resolve(pid)));
    sup.start();
    const pid = await started;
    await sup.stop(0, 1_000);
    expect(() => process.kill(pid, 0)).toThrow();
  });
});
