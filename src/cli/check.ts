// meshlet check: validate the config (and, when present, the certificates),
// then print what would be configured.
import { loadConfig } from '../config/load.js';
import { describeConfig } from '../config/describe.js';
import type { Command } from './main.js';

export const checkCommand: Command = {
  options: {},
  run(values) {
    const { config, source, warnings } = loadConfig(values['config'] as string | undefined);
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
    if (values['json']) {
      process.stdout.write(`${JSON.stringify({ source, config }, null, 2)}\n`);
      return Promise.resolve(0);
    }
    process.stdout.write(`config OK (${source})\n`);
    for (const line of describeConfig(config)) process.stdout.write(`${line}\n`);
    return Promise.resolve(0);
  },
};
