// The files meshlet run watches: the config (with its signature when pinned)
// and the certificates. Each change becomes an Outcome; the caller applies it
// or records the refusal.
import type { Logger } from '../log.js';
import type { LoadedConfig } from '../config/load.js';
import type { ConfigGate } from '../config/trust.js';
import { FileWatcher, type WatchOptions } from '../reload/watcher.js';
import { reloadCerts, reloadConfig, type Desired, type Outcome } from './reload.js';

export type ReloadKind = 'config' | 'certs';

export interface WatchDeps {
  loaded: LoadedConfig;
  /** The state serving now; reloads are checked against it. */
  current: () => Desired;
  onOutcome: (kind: ReloadKind, at: number, outcome: Outcome) => void;
  log: Logger;
  watch?: WatchOptions;
}

/** Starts the watchers; close them on stop. */
export async function watchSources(deps: WatchDeps): Promise<FileWatcher[]> {
  const { loaded, onOutcome } = deps;
  const w = deps.watch ?? {};
  const out: FileWatcher[] = [];
  const source = loaded.file;
  if (source !== undefined) {
    const gate = loaded.gate;
    // A pinned config: the start version becomes the floor a sidecar restart cannot go below.
    gate?.persist();
    const cw = new FileWatcher(gate ? [source, gate.sigFile] : [source], w, loaded.within);
    const retry: StateRetry = { sha256: '', delayMs: 0, timer: undefined };
    cw.on('change', (contents, at, refused) => {
      // Whatever the files hold now replaces an update still being retried.
      clearTimeout(retry.timer);
      const text = contents.get(source);
      if (text === undefined) {
        retry.sha256 = '';
        onOutcome('config', at, { ok: false, error: `${refused.get(source) ?? `${source}: file disappeared`}; keeping the last good config` });
      } else if (gate) gated(gate, { text, sig: contents.get(gate.sigFile), sigRefused: refused.get(gate.sigFile) }, deps, at, { watcher: cw, retry });
      else onOutcome('config', at, reloadConfig(text, source, deps.current()));
    });
    watchErrors(cw, 'config', deps.log);
    // Compared with the text in use, not with the file now: an update that landed while meshlet started is still seen.
    await cw.start(loaded.text !== undefined ? new Map([[source, loaded.text]]) : undefined);
    out.push(cw);
  }
  const { certs } = deps.current().config;
  const kw = new FileWatcher([certs.ca, certs.certChain, certs.key], w);
  kw.on('change', (_contents, at) => onOutcome('certs', at, reloadCerts(deps.current())));
  watchErrors(kw, 'certs', deps.log);
  await kw.start();
  out.push(kw);
  return out;
}

/** A failure while handling a change (a bug, not a refused update) is logged, never lost. */
function watchErrors(w: FileWatcher, kind: ReloadKind, log: Logger): void {
  w.on('error', (err) => log.error({ kind, err: err.message }, 'handling a file change failed; the config in use stays'));
}

/** Retrying an update whose version could not be recorded: which one, and the next wait. */
interface StateRetry {
  sha256: string;
  delayMs: number;
  timer: NodeJS.Timeout | undefined;
}

/** The first wait before an update whose state could not be written is tried again, doubling up to the most. */
export const STATE_RETRY_MS = { first: 1_000, most: 30_000 };

/** A pinned config's update: the gate admits it (signature, version) before it is even parsed. */
function gated(
  gate: ConfigGate,
  files: { text: string; sig: string | undefined; sigRefused: string | undefined },
  deps: WatchDeps,
  at: number,
  again: { watcher: FileWatcher; retry: StateRetry },
): void {
  const { retry } = again;
  const a = gate.admit(files.text, files.sig);
  if (a.kind !== 'apply') retry.sha256 = '';
  if (a.kind === 'same') return;
  if (a.kind === 'refuse') {
    deps.log.warn({ reason: a.reason, trust: gate.trust().mode }, "config update refused: not covered by the pod's policy");
    // A signature file that is there but was refused (outside the directory, a FIFO) says why, not "no signature file".
    deps.onOutcome('config', at, { ok: false, error: files.sigRefused ? `${a.error} (${files.sigRefused})` : a.error });
    return;
  }
  const outcome = reloadConfig(a.text, gate.file, deps.current());
  // Only an update that is actually served raises the version floor, and it is served only once the floor is recorded.
  const failed = outcome.ok ? gate.commit(a) : undefined;
  if (failed !== undefined) {
    // Logged, recorded and counted once per update; tried again with a growing wait (the file as it is then), so a
    // volume kept full neither floods the log and /xds's reload list nor loses the update.
    if (retry.sha256 !== a.sha256) {
      retry.sha256 = a.sha256;
      retry.delayMs = STATE_RETRY_MS.first;
      gate.count('state');
      deps.log.error({ reason: 'state', trust: gate.trust().mode, err: failed }, 'config update not applied: its version cannot be recorded');
      deps.onOutcome('config', at, { ok: false, error: failed });
    } else {
      retry.delayMs = Math.min(retry.delayMs * 2, STATE_RETRY_MS.most);
      deps.log.debug({ reason: 'state', retryInMs: retry.delayMs, err: failed }, 'config update retried: its version still cannot be recorded');
    }
    retry.timer = setTimeout(() => again.watcher.retry(), retry.delayMs).unref();
    return;
  }
  retry.sha256 = '';
  deps.onOutcome('config', at, outcome);
}

export interface ReloadRecord {
  kind: ReloadKind;
  at: string;
  ok: boolean;
  error?: string;
}

/** The last reloads, newest last, for /xds. */
export class ReloadLog {
  private readonly records: ReloadRecord[] = [];
  constructor(private readonly max = 20) {}

  add(kind: ReloadKind, at: number, outcome: Outcome): void {
    this.records.push({ kind, at: new Date(at).toISOString(), ok: outcome.ok, ...(outcome.ok ? {} : { error: outcome.error }) });
    if (this.records.length > this.max) this.records.shift();
  }

  list(): readonly ReloadRecord[] {
    return this.records;
  }
}
