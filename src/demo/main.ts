// `npm run demo`: emojivoto on meshlet, in network namespaces on this
// machine. Three pods (web, emoji, voting), each an app, `meshlet init`,
// `meshlet run` and a real Envoy; web calls the other two through egress
// routes. It sends a request through the mesh, shows the page, what tshark
// saw on the wire, and what happens to clients that skip the mesh. Then it
// tears everything down, also on Ctrl-C and on errors.
import { labUnavailable, MeshLab, type Pod } from './lab.js';
import { isRoot } from './netns.js';
import { EMOJIVOTO, report, type DemoResults } from './scenario.js';
const path = process.getBuiltinModule('node:path');

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

async function demo(lab: MeshLab): Promise<DemoResults> {
  const web = lab.pod('web');
  const emoji = lab.pod('emoji');
  const browser = lab.host('browser');
  const ca = path.join(lab.root, 'pki', 'mesh-ca.pem');

  const cap = await lab.capture(web);
  const emojiMark = emoji.app?.mark() ?? 0;
  const page = await lab.http(browser, web.v4, 8080, '/', { tls: { ca, servername: 'web-svc' } });
  await cap.stop();
  const wire = await cap.analyze(lab.ns, { tlsPorts: [8080], markers: ['served by web', 'unicorn', 'leaderboard'] });
  const emojiSaw = emoji.app?.since(emojiMark).find((e) => e.ev === 'request');

  const other = await lab.otherPki('other-ca');
  const files = {
    mesh: await lab.clientFiles('mesh', await lab.pki.issueLeaf({ sans: ['browser'] })),
    other: await lab.clientFiles('other', await other.issueLeaf({ sans: ['browser'] }), other),
  };
  const refusedMark = emoji.app?.mark() ?? 0;
  const attempt = (tls?: { cert?: string; key?: string }): ReturnType<MeshLab['http']> =>
    lab.http(browser, emoji.v4, 8080, '/emoji', tls ? { tls: { ca, servername: 'emoji-svc', ...tls } } : { timeoutMs: 3_000 });
  const refused = {
    plaintext: await attempt(),
    noCert: await attempt({}),
    otherCa: await attempt({ cert: files.other.cert, key: files.other.key }),
  };
  const refusedBytes = (emoji.app?.dataSince(refusedMark) ?? []).reduce((n, e) => n + e.n, 0);
  const meshClient = await attempt({ cert: files.mesh.cert, key: files.mesh.key });
  return { page, wire, emojiSaw, refused, refusedBytes, meshClient, pods: { web, emoji, voting: lab.pod('voting') }, browser };
}

async function main(): Promise<number> {
  if (!isRoot()) {
    say('meshlet demo needs root: it creates network namespaces, installs iptables rules and runs Envoy as uid 1337.');
    say('Run it as root, for example: sudo npm run demo');
    return 1;
  }
  const why = labUnavailable();
  if (why) {
    say(`meshlet demo cannot run here: ${why}. scripts/setup.sh installs what it needs.`);
    return 1;
  }
  say('meshlet demo: emojivoto in network namespaces (198.18.0.0/15, 2001:db8::/32)');
  const started = Date.now();
  let lab: MeshLab | undefined;
  let closing: Promise<string[]> | undefined;
  let interrupted = false;
  const close = (): Promise<string[]> => (closing ??= lab ? lab.close() : Promise.resolve([]));
  const tornDown = (errors: string[]): void =>
    say(
      `\ntorn down in ${((Date.now() - started) / 1000).toFixed(1)}s total: namespaces, processes, /etc/netns entries and temp ` +
        `files${errors.length ? ` (with errors: ${errors.join('; ')})` : ''}`,
    );
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      interrupted = true;
      say(`\n${sig}: tearing down`);
      void close().then((errors) => {
        tornDown(errors);
        process.exit(130);
      });
    });
  }
  try {
    lab = await MeshLab.create(EMOJIVOTO);
    const pods = [...lab.pods.values()];
    say(`pods   ${pods.map((p: Pod) => `${p.name} ${p.v4}`).join('   ')}   (+ a browser at ${lab.host('browser').v4}, outside the mesh)`);
    const times = await lab.start();
    say(
      `ready  ${pods.map((p) => `${p.name} ${((times.get(p.name) ?? 0) / 1000).toFixed(1)}s`).join('   ')}   (meshlet init, run, wait-ready: rules in ` +
        `place, Envoy ACKed)`,
    );
    const results = await demo(lab);
    say();
    for (const line of report(results)) say(line);
    return 0;
  } catch (err) {
    if (interrupted) await new Promise(() => undefined); // the signal handler finishes and exits
    say(`\ndemo failed: ${(err as Error).message}`);
    return 1;
  } finally {
    if (!interrupted) tornDown(await close());
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
