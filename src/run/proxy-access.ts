// What the proxy uid must be able to reach before Envoy can serve: the xDS
// socket (handed to it), and, when Envoy did not reach it, which of the Envoy
// binary, the bootstrap and the socket that uid cannot reach. Commands go
// through the CommandRunner seam.
import type { MeshConfig } from '../config/model.js';
import type { CommandResult, CommandRunner } from '../iptables/runner.js';
import { asProxyUid } from '../envoy/supervisor.js';
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
 * What the proxy uid cannot reach, asked only when a start's Envoy exited
 * before its ADS stream opened, or none opened in time (service.ts,
 * proxyAccessProven: a stream proves all of it, so a start that goes well
 * spawns nothing to find out). Envoy's binary is run as the supervisor runs
 * it (setpriv, then the binary with --version): setpriv's exec still has
 * root's access to the path, so an Envoy in a root-only directory runs, and
 * one without an execute bit does not. The bootstrap and the socket are tested
 * as that uid without capabilities, as Envoy opens them. Rejects naming every
 * problem with its fix; resolves when there is none (Envoy exited for
 * another reason, which its own log says). Only root can switch to the proxy
 * uid to look; otherwise meshlet is that uid.
 */
export async function checkProxyAccess(proxy: MeshConfig['proxy'], envoyPath: string, runner: CommandRunner, currentUid: number): Promise<void> {
  const { uid, gid, bootstrapPath, xdsSocket } = proxy;
  if (currentUid !== 0) return;
  const asProxy = (test: string[]): Promise<CommandResult> =>
    runner.run('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', 'test', ...test]);
  const [exec, bootstrap, socket] = await Promise.all([
    runner.run('setpriv', [...asProxyUid(uid, gid), envoyPath, '--version'], { timeoutMs: 30_000 }),
    asProxy(['-r', bootstrapPath]),
    asProxy(['-w', xdsSocket]),
  ]);
  const problems: string[] = [];
  if (exec.code !== 0) {
    const said = (exec.stderr || exec.stdout).trim().split('\n')[0] ?? '';
    problems.push(
      `execute Envoy at ${envoyPath} (run as the supervisor runs it, it exited ${exec.code}${said ? `: ${said}` : ''}); make it an executable file ` +
        `(scripts/setup.sh installs one at /usr/local/bin/envoy) or pass --envoy PATH`,
    );
  }
  if (bootstrap.code !== 0)
    problems.push(`read the bootstrap ${bootstrapPath}; make every parent directory searchable by that uid, or set proxy.bootstrapPath`);
  if (socket.code !== 0) problems.push(`reach the xDS socket ${xdsSocket}; make every parent directory searchable by that uid, or set proxy.xdsSocket`);
  if (problems.length > 0) throw new Error(problems.map((p) => `the proxy uid ${uid} cannot ${p}`).join('; and '));
}
