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
    const cw = new FileWatcher(gate ? [source, gate.sigFile] : [source], w);
    cw.on('change', (contents, at) => {
      const text = contents.get(source);
      if (text === undefined) onOutcome('config', at, { ok: false, error: `${source}: file disappeared; keeping the last good config` });
      else if (gate) gated(gate, text, contents.get(gate.sigFile), deps, at);
      else onOutcome('config', at, reloadConfig(text, source, deps.current()));
    });
    await cw.start();
    out.push(cw);
  }
  const { certs } = deps.current().config;
  const kw = new FileWatcher([certs.ca, certs.certChain, certs.key], w);
  kw.on('change', (_contents, at) => onOutcome('certs', at, reloadCerts(deps.current())));
  await kw.start();
  out.push(kw);
  return out;
}

/** A pinned config's update: the gate admits it (signature, version) before it is even parsed. */
function gated(gate: ConfigGate, text: string, sig: string | undefined, deps: WatchDeps, at: number): void {
  const a = gate.admit(text, sig);
  if (a.kind === 'same') return;
  if (a.kind === 'refuse') {
    deps.log.warn({ reason: a.reason, trust: gate.trust().mode }, "config update refused: not covered by the pod's policy");
    deps.onOutcome('config', at, { ok: false, error: a.error });
    return;
  }
  const outcome = reloadConfig(a.text, gate.file, deps.current());
  // Only an update that is actually served raises the version floor.
  if (outcome.ok) gate.commit(a);
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
