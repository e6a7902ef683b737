// What the proxy uid must be able to reach before Envoy can serve: the xDS
// socket (handed to it) and, checked as that uid, the Envoy binary, the
// bootstrap and the socket. Commands go through the CommandRunner seam.
import type { MeshConfig } from '../config/model.js';
import type { CommandRunner } from '../iptables/runner.js';
// node:fs, not node:fs/promises: this runs before Envoy starts, and node:fs is already loaded.
const { lchownSync } = process.getBuiltinModule('node:fs');

/**
 * The socket is 0600 and must belong to the uid Envoy runs as. lchown never
 * follows a link, and the name cannot have been swapped: the directory was
 * checked to be writable by meshlet alone. Only root can (and must) do this.
 */
export function handSocketToProxy(proxy: MeshConfig['proxy'], currentUid: number): void {
  if (currentUid !== 0) return;
  lchownSync(proxy.xdsSocket, proxy.uid, proxy.gid);
}

/**
 * Fails early, with the fix, when the proxy uid cannot run the Envoy binary
 * (e.g. pip put it under /root), read the bootstrap or reach the socket.
 * Only root can switch to the proxy uid to look; otherwise meshlet is that uid.
 */
export async function checkProxyAccess(proxy: MeshConfig['proxy'], envoyPath: string, runner: CommandRunner, currentUid: number): Promise<void> {
  const { uid, gid, bootstrapPath, xdsSocket } = proxy;
  if (currentUid !== 0) return;
  const asProxy = (test: string[]): Promise<{ code: number }> =>
    runner.run('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', 'test', ...test]);
  // One process when all three hold, the usual case: this runs while Envoy boots, and every process meshlet
  // spawns then (a fork of meshlet, an exec) takes CPU from Envoy's start. Only a failure pays for finding out which.
  if ((await asProxy(['-x', envoyPath, '-a', '-r', bootstrapPath, '-a', '-w', xdsSocket])).code === 0) return;
  const check = async (test: string, file: string, fix: string): Promise<void> => {
    if ((await asProxy([test, file])).code !== 0) throw new Error(`the proxy uid ${uid} cannot ${fix}`);
  };
  await Promise.all([
    check(
      '-x',
      envoyPath,
      `execute Envoy at ${envoyPath} (a binary under /root is not reachable); install it system-wide (scripts/setup.sh copies it to /usr/local/bin/envoy) ` +
        `or pass --envoy PATH`,
    ),
    check('-r', bootstrapPath, `read the bootstrap ${bootstrapPath}; make every parent directory searchable by that uid, or set proxy.bootstrapPath`),
    check('-w', xdsSocket, `reach the xDS socket ${xdsSocket}; make every parent directory searchable by that uid, or set proxy.xdsSocket`),
  ]);
  // Each alone passed: something changed in between. Still refused, as Envoy may not reach what it needs.
  throw new Error(
    `the proxy uid ${uid} could not reach Envoy ${envoyPath}, the bootstrap ${bootstrapPath} and the xDS socket ${xdsSocket} together; start again`,
  );
}
