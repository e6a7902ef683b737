// The proxy uid's access checks through the CommandRunner seam: which
// commands run, and which fix a failure names. The real setpriv path runs in
// test/run/run.test.ts (meshlet run as root).
import { describe, expect, it } from 'vitest';
import { checkProxyAccess } from '../../src/run/proxy-access.js';
import type { CommandRunner } from '../../src/iptables/runner.js';

const proxy = {
  uid: 1337,
  gid: 1337,
  inboundPort: 15006,
  outboundPort: 15001,
  portlessEgressPort: 15002,
  xdsSocket: '/r/xds.sock',
  bootstrapPath: '/r/envoy.json',
};

function runner(failing: string): { r: CommandRunner; calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    r: {
      run: (cmd, args) => {
        calls.push([cmd, ...args]);
        return Promise.resolve({ code: args.includes(failing) ? 1 : 0, stdout: '', stderr: '' });
      },
    },
  };
}

describe('checkProxyAccess', () => {
  it('as root: tests the binary, the bootstrap and the socket as the proxy uid, in one process when all pass', async () => {
    const { r, calls } = runner('none');
    await checkProxyAccess(proxy, '/usr/local/bin/envoy', r, 0);
    expect(calls).toEqual([
      [
        'setpriv',
        '--reuid=1337',
        '--regid=1337',
        '--clear-groups',
        '--',
        'test',
        '-x',
        '/usr/local/bin/envoy',
        '-a',
        '-r',
        '/r/envoy.json',
        '-a',
        '-w',
        '/r/xds.sock',
      ],
    ]);
  });

  it('when the joint test fails, tests each one alone to name which', async () => {
    const { r, calls } = runner('/r/envoy.json');
    await expect(checkProxyAccess(proxy, '/usr/local/bin/envoy', r, 0)).rejects.toThrow(/proxy uid 1337 cannot read the bootstrap \/r\/envoy.json/);
    expect(calls.slice(1).map((c) => c.slice(-3))).toEqual([
      ['test', '-x', '/usr/local/bin/envoy'],
      ['test', '-r', '/r/envoy.json'],
      ['test', '-w', '/r/xds.sock'],
    ]);
  });

  it('names the fix when the binary is not reachable', async () => {
    await expect(checkProxyAccess(proxy, '/root/envoy', runner('/root/envoy').r, 0)).rejects.toThrow(
      /proxy uid 1337 cannot execute Envoy at \/root\/envoy .*--envoy PATH/,
    );
  });

  it('not root: nothing to check (meshlet is the proxy uid)', async () => {
    const { r, calls } = runner('none');
    await checkProxyAccess(proxy, '/root/envoy', r, 1337);
    expect(calls).toEqual([]);
  });
});
