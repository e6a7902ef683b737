// A config edited in place by a writer that pauses mid-file must never be
// applied half-written. The attack runs for real: meshlet and Envoy in a
// network namespace, an mTLS port whose allowedSans admits only "web", and a
// uid-1337 writer whose first chunk (a valid config on its own) leaves the
// allowedSans list out, then pauses for 4 s before writing the rest. During
// the pause a real mTLS client with another SAN must still be refused.
import { describe, expect, it } from 'vitest';
import { chownSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { NetLab, netnsUnavailable } from '../helpers/netns.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { asUid } from '../../src/demo/proc.js';
import { cleanupPod, makePod, startMeshlet, until, type Pod } from '../helpers/meshlet.js';
import type { Leaf } from '../../src/devpki/pki.js';
import { cannotRun } from '../helpers/gate.js';

const skip = cannotRun('a half-written config is never applied', netnsUnavailable());
const cleanups = cleanupAfterEach();

const ECHO = `require('net').createServer((s) => s.on('data', (d) => s.write('echo:' + d)))
  .listen(+process.argv[1], '127.0.0.1', () => console.log('listening'));`;
// Prints ACCEPTED when the echo comes back through Envoy, REFUSED when the handshake or the connection fails.
const CLIENT = `const [port, cert, key, ca] = process.argv.slice(1); const fs = require('fs');
const s = require('tls').connect({
  host: '127.0.0.1', port: +port, cert: fs.readFileSync(cert), key: fs.readFileSync(key), ca: fs.readFileSync(ca), servername: 'web',
});
const t = setTimeout(() => { console.log('REFUSED timeout'); process.exit(0); }, 3000);
let got = ''; s.on('secureConnect', () => s.write('ping'));
s.on('data', (d) => { got += d; if (got.includes('echo:ping')) { clearTimeout(t); console.log('ACCEPTED'); process.exit(0); } });
s.on('error', (e) => { clearTimeout(t); console.log('REFUSED ' + e.code); process.exit(0); });
s.on('close', () => { clearTimeout(t); console.log('REFUSED closed'); process.exit(0); });`;

function configText(p: Pod, sans: string[] | undefined): string {
  const c = p.config as { certs: Record<string, string>; proxy: Record<string, unknown>; debug: { address: string } };
  return [
    `certs: ${JSON.stringify(c.certs)}`,
    `proxy: ${JSON.stringify(c.proxy)}`,
    `debug: ${JSON.stringify(c.debug)}`,
    'ingress:',
    '  mode: mapped',
    '  ports:',
    '    - name: app',
    `      port: ${p.base + 50}`,
    `      mappedPort: ${p.base + 51}`,
    '      policy: mtls',
    ...(sans ? [`      allowedSans: ${JSON.stringify(sans)}`] : []),
    '',
  ].join('\n');
}

describe.skipIf(skip)('a half-written config is never applied', () => {
  it('a uid-1337 writer pausing mid-file: the prefix without allowedSans never lets another SAN through', async () => {
    const lab = new NetLab('mlhw');
    cleanups.push(() => lab.cleanup());
    const ns = await lab.netns();
    const p = await makePod({}, ['web']);
    cleanups.push(() => cleanupPod(p));
    writeFileSync(p.configPath, configText(p, ['web']));
    // The attack needs a writer that may edit the config: give the file (not its directory) to uid 1337.
    chownSync(p.configPath, 1337, 1337);
    const client = async (name: string): Promise<string> => {
      const leaf: Leaf = await p.pki.issueLeaf({ sans: [name] });
      const cert = path.join(p.dir, `${name}.crt`);
      const key = path.join(p.dir, `${name}.key`);
      writeFileSync(cert, leaf.chainPem);
      writeFileSync(key, leaf.keyPem);
      return [cert, key].join('\0');
    };
    const ca = path.join(p.dir, 'ca', 'mesh-ca.pem');
    const probe = async (who: string): Promise<string> => {
      const [cert, key] = who.split('\0') as [string, string];
      const r = await lab.exec(ns, [process.execPath, '-e', CLIENT, String(p.base + 51), cert, key, ca]);
      return r.stdout.trim();
    };
    const web = await client('web');
    const intruder = await client('intruder');
    const web2 = await client('web2');

    const app = lab.spawn(ns, [process.execPath, '-e', ECHO, String(p.base + 50)]);
    await app.waitFor((l) => l === 'listening', 10_000);
    const m = startMeshlet(p, [], { ns });
    cleanups.push(() => m.stop());
    await until('Envoy to accept the "web" client through the mTLS port', async () => ((await probe(web)) === 'ACCEPTED' ? true : undefined), 30_000, 200);
    expect(await probe(intruder)).toMatch(/^REFUSED/);

    const full = configText(p, ['web', 'web2']);
    const cut = full.indexOf('      allowedSans:');
    const [setpriv = 'setpriv', ...args] = asUid(1337, [
      'sh',
      '-c',
      'printf "%s" "$1" > "$3"; echo prefix-written; sleep 4; printf "%s" "$2" >> "$3"; echo done',
      'writer',
      full.slice(0, cut),
      full.slice(cut),
      p.configPath,
    ]);
    const writer = spawn(setpriv, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let writerOut = '';
    writer.stdout.on('data', (d: Buffer) => (writerOut += d.toString()));
    cleanups.push(() => void writer.kill('SIGKILL'));
    await until('the writer to write its first chunk', () => (writerOut.includes('prefix-written') ? true : undefined), 10_000);
    // While the file holds only the prefix: the intruder is refused on every try (bounded: 40 tries).
    const during: string[] = [];
    for (let i = 0; i < 40 && !writerOut.includes('done'); i++) during.push(await probe(intruder));
    expect(during.length).toBeGreaterThan(0);
    expect(during.filter((r) => !r.startsWith('REFUSED'))).toEqual([]);
    await until('the writer to finish', () => (writerOut.includes('done') ? true : undefined), 20_000);
    expect(m.logs()).not.toContain('reload applied');
    // The finished file is applied: "web2" gets in, the intruder still does not.
    await until('meshlet to apply the finished config (log line)', () => (m.logs().includes('reload applied') ? true : undefined), 20_000);
    await until('Envoy to accept "web2" after the reload', async () => ((await probe(web2)) === 'ACCEPTED' ? true : undefined), 20_000, 200);
    expect(await probe(intruder)).toMatch(/^REFUSED/);
    expect(m.logs().match(/reload applied/g)).toHaveLength(1);
  });
});
