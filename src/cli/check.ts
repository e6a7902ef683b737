// meshlet check: validate the config and the certificates, then print what
// would be configured. Exit 1 lists every problem, one per line.
import { loadConfig } from '../config/load.js';
import { describeConfig } from '../config/describe.js';
import { exemptions } from '../config/exemptions.js';
import { CertError, describeCerts, formatCertProblem, loadCerts } from '../certs/index.js';
import { certProblems, errorJson, type Command } from './main.js';

export const checkCommand: Command = {
  run(values) {
    const { config, source, warnings, trust } = loadConfig(values['config'] as string | undefined);
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
    const json = values['json'] === true;
    let certs: ReturnType<typeof describeCerts> | undefined;
    if (!values['skip-certs']) {
      try {
        certs = describeCerts(loadCerts(config.certs));
      } catch (err) {
        if (!(err instanceof CertError)) throw err;
        const message = `config OK (${source}), but the certificates are not usable`;
        if (json) process.stdout.write(`${JSON.stringify(errorJson('certificates', 1, message, certProblems(err), source))}\n`);
        else {
          process.stderr.write(`meshlet: ${message}:\n`);
          for (const p of err.problems) process.stderr.write(`${formatCertProblem(p)}\n`);
        }
        return Promise.resolve(1);
      }
    }
    const lines = describeConfig(config);
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ ok: true, source, trust, warnings, summary: lines, config, exemptions: exemptions(config), certs: certs ?? null }, null, 2)}\n`,
      );
      return Promise.resolve(0);
    }
    process.stdout.write(`config OK (${source})\n`);
    process.stdout.write(
      `config trust: ${trust.mode}: ` +
        `${trust.detail}${trust.sha256 ? ` (sha256 ${trust.sha256}${trust.version !== undefined ? `, version ${trust.version}` : ''})` : ''}\n`,
    );
    for (const line of lines) process.stdout.write(`${line}\n`);
    const leaf = certs?.leaf;
    if (leaf)
      process.stdout.write(
        `certificate: ${leaf.subject}, SANs ${leaf.sans.join(', ')}, ${leaf.keyType}, valid until ${leaf.notAfter}, chains to the mesh CA\n`,
      );
    else process.stdout.write('certificates: not checked (--skip-certs)\n');
    return Promise.resolve(0);
  },
};
