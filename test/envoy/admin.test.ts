// The admin client and the proxy-owned directory, attacked the way a
// compromised Envoy (uid 1337, which owns that directory) could: a symlink in
// place of the directory or the socket, a socket of another owner, a server
// that never answers. Real sockets and real chown; needs root.
import { afterEach, describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/tmp.js';
import { chownSync, lstatSync, mkdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import path from 'node:path';
import { adminGet, ensureProxyDir } from '../../src/envoy/admin.js';
import { adminDir, adminSocketPath } from '../../src/config/constants.js';
import { allUids, orphanedEarlyEnvoy, runsBootstrap } from '../../src/envoy/stale.js';

const root = process.getuid?.() === 0;
const dirs: string[] = [];
const servers: { close: () => void }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const tmp = (): string => {
  const d = tmpDir('meshlet-admin-');
  dirs.push(d);
  return d;
};

async function serve(socket: string, handler: Parameters<typeof createServer>[1] = (_req, res) => res.end('hello')): Promise<Server> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(socket, r));
  return s;
}

describe('admin socket location', () => {
  it('sits in envoy/ next to the xDS socket', () => {
    expect(adminDir('/var/run/meshlet/xds.sock')).toBe('/var/run/meshlet/envoy');
    expect(adminSocketPath('/var/run/meshlet/xds.sock')).toBe('/var/run/meshlet/envoy/admin.sock');
  });
});

describe.skipIf(!root)('ensureProxyDir', () => {
  it('creates the directory for the proxy uid, mode 0700', () => {
    const d = path.join(tmp(), 'envoy');
    ensureProxyDir(d, 1337, 1337);
    const st = statSync(d);
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([1337, 1337, 0o700]);
  });

  it('takes over a root-owned directory from an earlier start and tightens a loose mode', () => {
    const d = path.join(tmp(), 'envoy');
    mkdirSync(d, { mode: 0o755 });
    ensureProxyDir(d, 1337, 1337);
    expect([statSync(d).uid, statSync(d).mode & 0o777]).toEqual([1337, 0o700]);
  });

  it('refuses a symlink (and leaves its target alone) and a directory of another uid', () => {
    const base = tmp();
    const target = path.join(base, 'target');
    mkdirSync(target, { mode: 0o755 });
    symlinkSync(target, path.join(base, 'envoy'));
    expect(() => ensureProxyDir(path.join(base, 'envoy'), 1337, 1337)).toThrow(/found a symlink; remove it/);
    expect([statSync(target).uid, statSync(target).mode & 0o777]).toEqual([0, 0o755]);
    const foreign = path.join(base, 'foreign');
    mkdirSync(foreign, { mode: 0o700 });
    chownSync(foreign, 1000, 1000);
    expect(() => ensureProxyDir(foreign, 1337, 1337)).toThrow(/owned by uid 1000, must be the proxy uid 1337/);
    writeFileSync(path.join(base, 'file'), '');
    expect(() => ensureProxyDir(path.join(base, 'file'), 1337, 1337)).toThrow(/non-directory/);
  });
});

describe.skipIf(!root)('adminGet', () => {
  it('talks HTTP over the socket, GET and POST', async () => {
    const sock = path.join(tmp(), 'admin.sock');
    await serve(sock, (req, res) => res.end(`${req.method} ${req.url}`));
    chownSync(sock, 1337, 1337);
    expect(await adminGet(sock, '/ready', { ownerUid: 1337 })).toEqual({ status: 200, body: 'GET /ready' });
    expect((await adminGet(sock, '/drain_listeners?graceful', { method: 'POST', ownerUid: 1337 })).body).toBe('POST /drain_listeners?graceful');
  });

  it('refuses a socket the proxy uid does not own, and a symlink to another socket, without sending anything', async () => {
    const d = tmp();
    let requests = 0;
    const other = path.join(d, 'other.sock');
    await serve(other, (_req, res) => {
      requests += 1;
      res.end('other');
    });
    await expect(adminGet(other, '/quitquitquit', { method: 'POST', ownerUid: 1337 })).rejects.toThrow(/owned by uid 0, not the proxy uid 1337; refusing/);
    const link = path.join(d, 'admin.sock');
    symlinkSync(other, link);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    await expect(adminGet(link, '/quitquitquit', { method: 'POST' })).rejects.toThrow(/not a socket; refusing/);
    expect(requests).toBe(0);
  });

  it('gives up on a server that never answers, within the bound', async () => {
    const sock = path.join(tmp(), 'silent.sock');
    const s = createNetServer(() => undefined);
    servers.push(s);
    await new Promise<void>((r) => s.listen(sock, r));
    await expect(adminGet(sock, '/stats', { timeoutMs: 200 })).rejects.toThrow(/no answer within 200 ms/);
  });

  it('stops reading an answer larger than the bound', async () => {
    const sock = path.join(tmp(), 'big.sock');
    await serve(sock, (_req, res) => res.end('x'.repeat(4096)));
    await expect(adminGet(sock, '/config_dump', { maxBytes: 1024 })).rejects.toThrow(/answer larger than 1024 bytes/);
    expect((await adminGet(sock, '/config_dump', { maxBytes: 4096 })).body).toHaveLength(4096);
  });

  it('reads a chunked answer, as Envoy streams large ones', async () => {
    const sock = path.join(tmp(), 'chunked.sock');
    await serve(sock, (_req, res) => {
      res.write('{"configs":');
      res.write('[]');
      res.end('}');
    });
    expect(await adminGet(sock, '/config_dump')).toEqual({ status: 200, body: '{"configs":[]}' });
  });

  /** A socket whose server writes `answer` to every connection, then closes it: what a compromised Envoy (uid 1337, which owns the socket) could send. */
  async function rawServer(answer: string | Buffer, opts: { endless?: boolean } = {}): Promise<{ sock: string; requests: string[] }> {
    const sock = path.join(tmp(), 'raw.sock');
    const requests: string[] = [];
    const s = createNetServer((c) => {
      c.once('data', (d: Buffer) => {
        requests.push(d.toString('latin1'));
        if (!opts.endless) {
          c.end(answer);
          return;
        }
        const more = (): void => {
          while (!c.destroyed && c.write(answer));
          if (!c.destroyed) c.once('drain', more);
        };
        more();
      });
      c.on('error', () => undefined);
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(sock, r));
    return { sock, requests };
  }

  it('sends one HTTP/1.1 request line with the path as given, and Connection: close', async () => {
    const { sock, requests } = await rawServer('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    expect(await adminGet(sock, '/stats?format=json&filter=%5Eserver%5C.state%24')).toEqual({ status: 200, body: 'ok' });
    expect(requests).toEqual(['GET /stats?format=json&filter=%5Eserver%5C.state%24 HTTP/1.1\r\nHost: envoy-admin\r\nConnection: close\r\n\r\n']);
  });

  it('refuses a path that would split the request line, without connecting', async () => {
    const { sock, requests } = await rawServer('HTTP/1.1 200 OK\r\n\r\n');
    for (const bad of ['/ready HTTP/1.1\r\nHost: x\r\n\r\nPOST /quitquitquit', '/a b', 'ready', '/\u00e9'])
      await expect(adminGet(sock, bad)).rejects.toThrow(/is not a request path/);
    expect(requests).toEqual([]);
  });

  it.each([
    ['no status line', 'garbage\r\n\r\n', /not an HTTP answer/],
    ['a header without a colon', 'HTTP/1.1 200 OK\r\nno-colon\r\n\r\nbody', /bad header line/],
    ['a bad chunk size', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', /bad chunk size/],
    ['a chunk longer than what came', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nabc', /chunked body ends early/],
    ['a Content-Length beyond the body', 'HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\nshort', /shorter than its Content-Length/],
    ['headers that never end', `HTTP/1.1 200 OK\r\n${'x-pad: y\r\n'.repeat(8000)}`, /no complete HTTP header/],
  ])('rejects an answer with %s, naming the request', async (_name, answer, problem) => {
    const { sock } = await rawServer(answer);
    await expect(adminGet(sock, '/stats')).rejects.toThrow(problem);
    await expect(adminGet(sock, '/stats')).rejects.toThrow(/^Envoy admin \/stats: /);
  });

  it('stops reading an answer that never ends, at the bound, and closes the connection', async () => {
    const { sock } = await rawServer(Buffer.alloc(64 * 1024, 'x'), { endless: true });
    await expect(adminGet(sock, '/config_dump', { maxBytes: 1024 * 1024, timeoutMs: 10_000 })).rejects.toThrow(/answer larger than 1048576 bytes/);
  });

  it('names the socket when it is missing', async () => {
    await expect(adminGet(path.join(tmp(), 'none.sock'), '/ready')).rejects.toThrow(/none\.sock: ENOENT/);
  });
});

describe('stale Envoy matching', () => {
  it('wants every uid to be the proxy uid', () => {
    expect(allUids('Name:\tenvoy\nUid:\t1337\t1337\t1337\t1337\n', 1337)).toBe(true);
    // A setuid-root binary started by the proxy uid keeps a root effective uid: not ours to kill.
    expect(allUids('Uid:\t1337\t0\t0\t0\n', 1337)).toBe(false);
    expect(allUids('Uid:\t0\t0\t0\t0\n', 1337)).toBe(false);
  });

  it('wants -c followed by exactly our bootstrap path', () => {
    expect(runsBootstrap('/usr/local/bin/envoy\0-c\0/var/run/meshlet/envoy.json\0--disable-hot-restart\0', '/var/run/meshlet/envoy.json')).toBe(true);
    expect(runsBootstrap('envoy\0--config-path\0/var/run/meshlet/envoy.json\0', '/var/run/meshlet/envoy.json')).toBe(true);
    expect(runsBootstrap('envoy\0-c\0/var/run/meshlet/envoy.json.old\0', '/var/run/meshlet/envoy.json')).toBe(false);
    expect(runsBootstrap('cat\0/var/run/meshlet/envoy.json\0', '/var/run/meshlet/envoy.json')).toBe(false);
    // The launcher's FIFO names its meshlet's pid: an Envoy whose parent is another process has outlived that meshlet.
    expect(orphanedEarlyEnvoy('/usr/local/bin/envoy\0-c\0/dev/shm/meshlet-envoy.42.json\0--disable-hot-restart\0', 1)).toBe(true);
    expect(orphanedEarlyEnvoy('/usr/local/bin/envoy\0-c\0/dev/shm/meshlet-envoy.42.json\0--disable-hot-restart\0', 42)).toBe(false);
    expect(orphanedEarlyEnvoy('/usr/local/bin/envoy\0-c\0/dev/shm/meshlet-envoy.42.json.x\0', 1)).toBe(false);
    expect(orphanedEarlyEnvoy('/usr/local/bin/envoy\0-c\0/var/run/meshlet/envoy.json\0', 1)).toBe(false);
    expect(orphanedEarlyEnvoy('cat\0/dev/shm/meshlet-envoy.42.json\0', 1)).toBe(false);
  });
});
