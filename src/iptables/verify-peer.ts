// A temporary "outside host" for verification. Traffic the pod sends to its
// own address arrives on lo and is (rightly) not TPROXY'd, so inbound capture
// can only be proven with a packet that enters through a real interface: a
// veth pair whose far end sits in a throwaway network namespace. The
// namespace is held by a child process (`unshare --net`) that exits when its
// stdin closes, so the namespace and the veth pair vanish with it even if
// meshlet dies. Needs CAP_SYS_ADMIN (for unshare) besides CAP_NET_ADMIN.
import type { ProcessStarter } from './process.js';
import type { CommandRunner } from './runner.js';
import { describeFailure } from './runner.js';
const { randomBytes } = process.getBuiltinModule('node:crypto');

/** RFC 2544 benchmark and RFC 3849 documentation space: never a real peer. */
export const PEER_NET = {
  podV4: '198.19.255.253',
  peerV4: '198.19.255.254',
  podV6: '2001:db8:ffff:ffff::1',
  peerV6: '2001:db8:ffff:ffff::2',
} as const;

export interface Peer {
  /** Prefix that runs a command inside the peer's namespace. */
  enter: string[];
  remove(): Promise<void>;
}

const HOLDER = 'import os,sys; print(os.getpid(), flush=True); sys.stdin.read()';

export async function createPeer(runner: CommandRunner, processes: ProcessStarter, python: string, v6: boolean): Promise<Peer | string> {
  const holder = processes.start('unshare', ['--net', '--', python, '-c', HOLDER]);
  let pid: string;
  try {
    pid = (await holder.waitFor((l) => /^\d+$/.test(l), 5000)).trim();
  } catch (err) {
    await holder.stop();
    return `cannot create the test peer namespace (needs CAP_SYS_ADMIN and unshare): ${(err as Error).message}`;
  }
  const id = randomBytes(3).toString('hex');
  const podIf = `mlv${id}p`;
  const peerIf = `mlv${id}q`;
  const enter = ['nsenter', `--net=/proc/${pid}/ns/net`];
  const pod = (...a: string[]): [string, string[]] => ['ip', a];
  const peer = (...a: string[]): [string, string[]] => ['nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', ...a]];
  const steps: [string, string[]][] = [
    pod('link', 'add', podIf, 'type', 'veth', 'peer', 'name', peerIf, 'netns', pid),
    pod('addr', 'add', `${PEER_NET.podV4}/30`, 'dev', podIf),
    peer('addr', 'add', `${PEER_NET.peerV4}/30`, 'dev', peerIf),
  ];
  if (v6)
    steps.push(
      pod('-6', 'addr', 'add', `${PEER_NET.podV6}/64`, 'dev', podIf, 'nodad'),
      peer('-6', 'addr', 'add', `${PEER_NET.peerV6}/64`, 'dev', peerIf, 'nodad'),
    );
  steps.push(pod('link', 'set', podIf, 'up'), peer('link', 'set', peerIf, 'up'), peer('link', 'set', 'lo', 'up'));
  const remove = async (): Promise<void> => {
    // The namespace dies with its holder, and the veth pair with it; the
    // explicit delete makes it immediate.
    await runner.run('ip', ['link', 'del', podIf]);
    await holder.stop();
  };
  for (const [cmd, args] of steps) {
    const r = await runner.run(cmd, args);
    if (r.code !== 0) {
      await remove();
      return `cannot create the test peer: ${describeFailure(cmd, args, r)}`;
    }
  }
  return { enter, remove };
}
