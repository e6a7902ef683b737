// meshlet bootstrap: write Envoy's bootstrap (ADS by default; --static for a
// Contrast-equivalent config with every resource inline and no xDS).
import { PUBLIC_MODE, SECRET_MODE, writeFileAtomic } from '../fs/safe-write.js';
import { loadConfig } from '../config/load.js';
import { loadCerts } from '../certs/index.js';
import { buildBootstrap, renderBootstrap } from '../envoy/bootstrap.js';
import { buildStaticBootstrap } from '../envoy/static-bootstrap.js';
import { emit } from './output.js';
import type { Command } from './main.js';
const { hostname } = process.getBuiltinModule('node:os');

export const bootstrapCommand: Command = {
  run(values) {
    const { config } = loadConfig(values['config'] as string | undefined);
    const nodeId = (values['node-id'] as string | undefined) ?? `meshlet~${hostname()}`;
    const json = values['static']
      ? buildStaticBootstrap(config, loadCerts(config.certs), { nodeId })
      : buildBootstrap(config, { nodeId, cluster: 'meshlet', delta: values['sotw'] !== true });
    const text = renderBootstrap(json);
    const out = values['out'] as string | undefined;
    // The static form carries the private key inline: owner-only, on a new
    // inode, so an existing file's looser mode (or a symlink there) is not kept.
    if (out) {
      writeFileAtomic(out, text, values['static'] ? SECRET_MODE : PUBLIC_MODE);
      emit(values, { ok: true, out, static: values['static'] === true }, '');
    } else process.stdout.write(text); // the bootstrap is JSON already
    return Promise.resolve(0);
  },
};
