// The second line of defence against a forwarding loop. `meshlet init`
// exempted the proxy uid only, but this meshlet runs as root and claims
// dns.meshletUid 0 (a config that differs between init and run, which
// /ready also reports as rules not matching). Its forwarded query is
// redirected straight back to it: it must recognise its own query, drop it
// once, and answer the app SERVFAIL, instead of amplifying.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createPki } from '../../src/devpki/pki.js';
import { runInit } from '../../src/iptables/init.js';
import { validateConfig } from '../../src/config/validate.js';
import { NetLab, netnsUnavailable } from '../helpers/netns.js';
import { asUid } from '../../src/demo/proc.js';
import { MESHLET } from '../helpers/meshlet.js';
import { cannotRun } from '../helpers/gate.js';
import { collectLines, EventLog } from '../helpers/wait.js';

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const skip = cannotRun(
  'dns forwarding loop',
  netnsUnavailable() ?? (existsSync(path.resolve('dist/src/dns/index.js')) ? undefined : 'needs `npm run build` (runs the built CLI)'),
);

// One UDP query for loop.test A to 198.18.54.53:53 as uid 1000; prints the rcode or "timeout".
const QUERY = String.raw`
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(8); s.connect(('198.18.54.53', 53))
s.send(struct.pack('!HHHHHH', 0x7777, 0x0100, 1, 0, 0, 0) + b'\x04loop\x04test\x00' + struct.pack('!HH', 1, 1))
try:
    r = s.recv(512); print('rcode', r[3] & 15)
except socket.timeout:
    print('timeout')
`;

describe.skipIf(skip)('dns forwarding loop', () => {
  const lab = new NetLab('mll');
  const dir = mkdtempSync(path.join(tmpdir(), 'meshlet-dns-loop-'));
  let meshlet: ChildProcess | undefined;
  const out = new EventLog<string>();

  afterAll(async () => {
    const m = meshlet;
    if (m && m.exitCode === null && m.signalCode === null) {
      // A meshlet that does not stop on SIGTERM (a broken build once did) is killed: the namespaces go either way.
      const exited = new Promise((r) => m.once('exit', r));
      m.kill('SIGTERM');
      const timer = setTimeout(() => m.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('drops its own query when it comes back, once, and the app gets SERVFAIL', async () => {
    chmodSync(dir, 0o755);
    const ns = await lab.netns('pod');
    // A default route, so the resolver address is routable; nothing answers there.
    await lab.veth({ ns, ifname: 'eth0', addrs: ['198.18.54.1/24'] }, { ns: await lab.netns('peer'), addrs: ['198.18.54.53/24'] });
    const initConfig = validateConfig({ ingress: { mode: 'disabled' }, dns: { enabled: true } });
    if (!initConfig.ok) throw new Error('bad config');
    await runInit(initConfig.config, {}, { runner: lab.runner(ns), backend: 'nft' });

    const pki = await createPki(path.join(dir, 'pki'));
    const files = await pki.writeContrastDir(path.join(dir, 'certs'), await pki.issueLeaf());
    const config = path.join(dir, 'config.yaml');
    writeFileSync(
      config,
      stringify({
        certs: { ca: files.ca, certChain: files.certChain, key: files.key },
        ingress: { mode: 'disabled' },
        dns: { enabled: true, meshletUid: 0, upstreams: ['198.18.54.53'] },
        proxy: { xdsSocket: path.join(dir, 'xds.sock'), bootstrapPath: path.join(dir, 'envoy.json') },
      }),
    );
    meshlet = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, ...MESHLET, 'run', '--config', config, '--no-envoy', '--skip-iptables-check', '--drain-seconds', '0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    collectLines(meshlet.stdout, out);
    collectLines(meshlet.stderr, out);
    await out.waitFor((l) => l.includes('dns server listening'), 20_000, 'meshlet logging "dns server listening"');

    const r = await lab.exec(ns, asUid(1000, [PYTHON, '-c', QUERY]), { timeoutMs: 15_000 });
    // SERVFAIL, not the client's own 8 s timeout: meshlet answered after dropping its returning query.
    expect(r.stdout.trim()).toBe('rcode 2');
    await out.waitFor((l) => l.includes('a forwarded query came back to meshlet'), 10_000, 'meshlet logging the returning query');
    // Not a storm: the loop counter, read after the answer, is exactly one.
    const scrape = "import urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:15020/metrics', timeout=2).read().decode())";
    const metrics = (await lab.must(ns, [PYTHON, '-c', scrape])).split('\n');
    expect(metrics.find((l) => l.startsWith('meshlet_dns_queries_total{outcome="loops"}'))).toBe('meshlet_dns_queries_total{outcome="loops"} 1');
    expect(out.items.filter((l) => l.includes('a forwarded query came back to meshlet'))).toHaveLength(1);
  });
});
