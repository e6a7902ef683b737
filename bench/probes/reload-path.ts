// The config reload path, step by step, outside meshlet: the steps
// src/run/reload.ts takes for an edit, each timed on its own, warm (after
// the first edits), for edits like row 3's (toggle a port's policy, add or
// remove an egress route).
//   node dist/bench/probes/reload-path.js CONFIG EDITS
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parse, stringify } from 'yaml';
import { loadCerts } from '../../src/certs/index.js';
import { loadConfig, loadConfigText } from '../../src/config/load.js';
import { buildBootstrap, renderBootstrap } from '../../src/envoy/bootstrap.js';
import { generateRules } from '../../src/iptables/index.js';
import { reloadConfig, type Desired } from '../../src/run/reload.js';
import { snapshotFor } from '../../src/run/snapshot-for.js';
import { buildResources } from '../../src/xds/builders/index.js';
import { buildSnapshot } from '../../src/xds/snapshot.js';

const [configPath, editsArg] = process.argv.slice(2);
if (!configPath) throw new Error('usage: reload-path.js CONFIG EDITS');
const edits = Number(editsArg ?? '20');

interface Raw {
  ingress: { ports: { policy?: string }[] };
  egress: { routes: { name: string; listen: string; remote: string }[] };
}

const base = parse(readFileSync(configPath, 'utf8')) as Raw;
const { config, source } = loadConfig(configPath);
const certs = loadCerts(config.certs);
let prev: Desired = { config, certs, snapshot: snapshotFor(config, certs) };

function edited(i: number): string {
  const raw = structuredClone(base);
  const port = raw.ingress.ports[0];
  if (port && Math.floor(i / 2) % 2 === 0) port.policy = port.policy === 'tls' ? 'mtls' : 'tls';
  const first = raw.egress.routes[0];
  if (first && i % 2 === 1) raw.egress.routes.push({ ...first, name: 'probe-extra', listen: first.listen.replace(/\.\d+(:\d+)?$/, '.250$1') });
  return stringify(raw);
}

function timed<T>(f: () => T): [T, number] {
  const t = performance.now();
  const v = f();
  return [v, performance.now() - t];
}

const restartCheck = (a: Desired['config'], b: Desired['config']): boolean => {
  const boot = (c: Desired['config']): string => renderBootstrap(buildBootstrap(c, { nodeId: '', cluster: '' }));
  return JSON.stringify(generateRules(a)) === JSON.stringify(generateRules(b)) && boot(a) === boot(b);
};

const steps = { parseValidate: [] as number[], restartCheck: [] as number[], builders: [] as number[], snapshot: [] as number[], reloadConfig: [] as number[] };
for (let i = 0; i < edits; i++) {
  const text = edited(i);
  const [next, parseMs] = timed(() => loadConfigText(text, source));
  const [, checkMs] = timed(() => restartCheck(prev.config, next));
  const [resources, buildMs] = timed(() => buildResources(next, certs));
  const [, snapMs] = timed(() => buildSnapshot(resources));
  const [outcome, totalMs] = timed(() => reloadConfig(text, source, prev));
  steps.parseValidate.push(parseMs);
  steps.restartCheck.push(checkMs);
  steps.builders.push(buildMs);
  steps.snapshot.push(snapMs);
  steps.reloadConfig.push(totalMs);
  if (!outcome.ok) throw new Error(outcome.error);
  prev = outcome.desired;
}
process.stdout.write(`${JSON.stringify(steps)}\n`);
