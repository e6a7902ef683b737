// The proxy uid's access checks through the CommandRunner seam: which
// commands run, and which fix a failure names. The real setpriv path runs in
// test/run/run.test.ts and test/run/startup-failure.test.ts (meshlet run as
// root, with an Envoy that cannot be executed).
import { describe, expect, it } from 'vitest';
import { checkProxyAccess } from '../../src/run/proxy-access.js';
import { asProxyUid } from '../../src/envoy/supervisor.js';
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

/** A runner whose commands fail when their arguments include `failing`. */
function runner(failing: string): { r: CommandRunner; calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    r: {
      run: (cmd, args) => {
        calls.push([cmd, ...args]);
        const fails = args.includes(failing);
        return Promise.resolve({ code: fails ? 126 : 0, stdout: '', stderr: fails ? `setpriv: cannot execute ${failing}: Permission denied\nmore` : '' });
      },
    },
  };
}

describe('checkProxyAccess', () => {
  it('as root: runs Envoy as the supervisor does (--version), and tests the bootstrap and the socket as the proxy uid', async () => {
    const { r, calls } = runner('none');
    await checkProxyAccess(proxy, '/usr/local/bin/envoy', r, 0);
    expect(calls).toEqual([
      ['setpriv', ...asProxyUid(1337, 1337), '/usr/local/bin/envoy', '--version'],
      ['setpriv', '--reuid=1337', '--regid=1337', '--clear-groups', '--', 'test', '-r', '/r/envoy.json'],
      ['setpriv', '--reuid=1337', '--regid=1337', '--clear-groups', '--', 'test', '-w', '/r/xds.sock'],
    ]);
    // The same privileges as Envoy's own start: the proxy uid, CAP_NET_ADMIN only.
    expect(calls[0]).toContain('--bounding-set=-all,+net_admin');
  });

  it('names the bootstrap when that uid cannot read it', async () => {
    await expect(checkProxyAccess(proxy, '/usr/local/bin/envoy', runner('/r/envoy.json').r, 0)).rejects.toThrow(
      /^the proxy uid 1337 cannot read the bootstrap \/r\/envoy.json; make every parent directory searchable by that uid, or set proxy.bootstrapPath$/,
    );
  });

  it('names the socket when that uid cannot reach it', async () => {
    await expect(checkProxyAccess(proxy, '/usr/local/bin/envoy', runner('/r/xds.sock').r, 0)).rejects.toThrow(
      /^the proxy uid 1337 cannot reach the xDS socket \/r\/xds.sock; .*set proxy.xdsSocket$/,
    );
  });

  it('names the binary, with the first line of what setpriv said, when it cannot be executed', async () => {
    const err = await checkProxyAccess(proxy, '/opt/envoy', runner('/opt/envoy').r, 0).catch((e: unknown) => e as Error);
    expect((err as Error).message).toMatch(/^the proxy uid 1337 cannot execute Envoy at \/opt\/envoy \(run as the supervisor runs it, it exited 126: /);
    expect((err as Error).message).toMatch(/: setpriv: cannot execute \/opt\/envoy: Permission denied\); .*--envoy PATH$/);
  });

  it('names every problem at once', async () => {
    const r: CommandRunner = { run: () => Promise.resolve({ code: 1, stdout: '', stderr: '' }) };
    const err = await checkProxyAccess(proxy, '/opt/envoy', r, 0).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message.split('; and ').map((m) => /cannot (\w+)/.exec(m)?.[1])).toEqual(['execute', 'read', 'reach']);
  });

  it('not root: nothing to check (meshlet is the proxy uid)', async () => {
    const { r, calls } = runner('none');
    await checkProxyAccess(proxy, '/root/envoy', r, 1337);
    expect(calls).toEqual([]);
  });
});
