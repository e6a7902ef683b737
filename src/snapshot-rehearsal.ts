// A rehearsal of `meshlet run`'s start, run once while the startup snapshot
// is built (src/snapshot.ts), so that the blob keeps the bytecode of what a
// start runs: V8 compiles a function on its first call, and a start from a
// blob without code compiled every function of the config check, the
// certificate checks and the snapshot build on the way to Envoy's first
// answer (about a third of node's CPU time to /ready on a 2-CPU VM).
// scripts/install-snapshot.sh builds the blob with V8's code kept and then
// drops node's own code cache for its built-ins from it (src/snapshot-blob.ts
// says why); what stays is the bytecode of the functions that ran here.
//
// The rehearsal runs the same functions a start runs, on a sample config and
// a throwaway PKI that the script writes into a fresh directory (`meshlet
// dev-pki`), with an empty environment for the config's pins. It keeps none
// of their results: the snapshot's reusable entries and the builders' memos
// are emptied after it, and it fails the build if the sample needed the YAML
// library or zod (both would then be in every start's heap, which the fast
// path exists to avoid). Its modules are loaded before the rehearsal runs,
// while the snapshot guard still refuses reads of the process's state, as
// every module in the snapshot is.
import { loadConfig } from './config/load.js';
import { checkReadCerts, readCertFiles } from './certs/load.js';
import { buildBootstrap, renderBootstrap } from './envoy/bootstrap.js';
import { snapshotFor } from './run/snapshot-for.js';
import { forgetBuilt } from './xds/snapshot.js';
import { forgetAllMemos, memoSizes } from './xds/builders/memo.js';
const { writeFileSync } = process.getBuiltinModule('node:fs');
const { createRequire } = process.getBuiltinModule('node:module');
const path = process.getBuiltinModule('node:path');

/**
 * The sample: what a typical pod runs (as bench/ row 2's config), in the
 * block YAML the fast reader takes. No DNS service (it binds sockets).
 */
export function rehearsalConfig(dir: string): string {
  return `certs:
  ca: ${dir}/certs/mesh-ca.pem
  certChain: ${dir}/certs/certChain.pem
  key: ${dir}/certs/key.pem
proxy:
  xdsSocket: ${dir}/run/xds.sock
  bootstrapPath: ${dir}/run/envoy.json
ingress:
  mode: tproxy
  default: mtls
  ports:
    - name: web
      port: 8080
      policy: tls
    - name: metrics
      port: 7890
      policy: plaintext
    - name: admin-api
      port: 8443
      policy: mtls
      allowedSans:
        - ops
egress:
  routes:
    - name: emoji
      listen: 127.1.0.1:8081
      remote: emoji-svc:8080
    - name: voting
      listen: 127.1.0.2:8081
      remote: 198.18.0.21:8080
      sni: voting-svc
      expectedSans:
        - voting-svc
    - name: db
      listen: 127.1.0.3
      remote: db-svc
  capture: true
  exclude:
    ports:
      - 443
    cidrs:
      - 198.19.0.0/16
`;
}

/** Packages (node_modules) that CommonJS has loaded in this process: the YAML library and zod come that way. */
function loadedPackages(): string[] {
  return Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes(`${path.sep}node_modules${path.sep}`));
}

/** What the rehearsal ran, for the build's log and the tests. */
export interface RehearsalReport {
  resources: number;
  forgotten: { built: number; memos: number };
}

/** Runs a start's config, certificate and snapshot steps on the sample in `dir` (which holds certs/ from `meshlet dev-pki`). */
export function rehearseStart(dir: string): RehearsalReport {
  const before = new Set(loadedPackages());
  const configPath = path.join(dir, 'config.yaml');
  writeFileSync(configPath, rehearsalConfig(dir));
  const { config } = loadConfig(configPath, {});
  renderBootstrap(buildBootstrap(config, { nodeId: 'rehearsal', cluster: 'meshlet' }));
  const certs = checkReadCerts(readCertFiles(config.certs), config.certs);
  const snapshot = snapshotFor(config, certs);
  const added = loadedPackages().filter((f) => !before.has(f));
  if (added.length > 0)
    throw new Error(
      `the rehearsal's config left meshlet's fast path and loaded ${added.join(', ')}: ` +
        'keep it to what src/config/yaml-fast.ts and the generated validator take',
    );
  const resources = Object.values(snapshot.types).reduce((n, t) => n + t.resources.size, 0);
  const memos = memoSizes();
  forgetAllMemos();
  return { resources, forgotten: { built: forgetBuilt(), memos } };
}
