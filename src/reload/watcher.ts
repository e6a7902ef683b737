// Watches files for changes the way Kubernetes updates them: a mounted
// ConfigMap or Secret swaps a `..data` symlink in the file's directory, so a
// watch on the file itself misses the change. We watch each parent directory,
// keep a polling fallback (inotify can be unavailable or miss events on some
// volume types), and hand on only complete files:
//  - a file that arrived by rename (the `..data` symlink swap, or a file
//    written elsewhere and renamed over the watched name) was complete before
//    it appeared, so it is reported at once (after a short double read);
//  - a file edited in place may be half-written (a writer can pause mid-file
//    for seconds), so it is reported only once its size, mtime and content
//    hash have stayed the same for the settle window.
import type { FSWatcher } from 'node:fs';
import { InputFileError, readInputFileStat } from '../fs/read-limited.js';
const { watch, realpathSync } = process.getBuiltinModule('node:fs');
const { createHash } = process.getBuiltinModule('node:crypto');
const path = process.getBuiltinModule('node:path');
const { EventEmitter } = process.getBuiltinModule('node:events');

export interface WatchOptions {
  /** Wait this long after the last event before reading. */
  debounceMs?: number;
  /** An in-place edit must stay unchanged this long before it is reported. */
  settleMs?: number;
  /** A file that arrived by rename is read twice this far apart and must match. */
  recheckMs?: number;
  /** Polling fallback interval; 0 disables polling. */
  pollMs?: number;
}

/**
 * In-place edits wait this long. A rename or ConfigMap swap does not, so the
 * reload latency of the documented update paths is unaffected; the window
 * only has to outlast a writer's pause mid-file (seconds, for a human or a
 * stalled pipe), and a longer wait for an in-place edit costs little.
 */
export const DEFAULT_SETTLE_MS = 5_000;

/**
 * Quiet time after the last event before the files are read. It batches the
 * events of one update (a ConfigMap swap is a burst of creates and renames
 * within a millisecond) and bounds how often a storm of writes is read; an
 * update that is still arriving after it is caught by the rename re-read or
 * the settle window. Every reload waits it, so it is kept short.
 */
export const DEFAULT_DEBOUNCE_MS = 3;

/** A file that arrived by rename is read again this much later and must be unchanged. */
export const DEFAULT_RECHECK_MS = 5;

export interface WatcherEvents {
  /**
   * Stable new contents of every watched file (missing and refused files are
   * absent), and why each refused one was (a FIFO, too large, outside `within`).
   */
  change: [contents: Map<string, string>, changedAt: number, refused: Map<string, string>];
  error: [err: Error];
}

interface FileState {
  text: string;
  /** Why the file was refused, not read (it exists, but is no file to read). */
  problem?: string;
  /** Resolved path: changes when a `..data`-style symlink is swapped. */
  real: string;
  ino: number;
  size: number;
  mtimeMs: number;
}

type Snapshot = Map<string, FileState>;

function readAll(files: readonly string[], within: string | undefined): Snapshot {
  const out: Snapshot = new Map();
  for (const f of files) {
    try {
      // Non-regular or oversized files are refused without reading them
      // (a FIFO would hang, /dev/zero would fill memory on every poll), and so is one outside `within`.
      const { text, stat } = readInputFileStat(f, undefined, within);
      out.set(f, { text, real: realpathSync(f), ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs });
    } catch (err) {
      // Missing: absent, and whoever validates the contents reports it. Refused: kept with the reason, which says nothing of the contents.
      if (err instanceof InputFileError && err.code !== 'ENOENT') out.set(f, { text: '', problem: err.message, real: '', ino: 0, size: 0, mtimeMs: 0 });
    }
  }
  return out;
}

function digest(s: Snapshot): string {
  const h = createHash('sha256');
  for (const [f, c] of [...s].sort(byName)) h.update(`${f}\0${c.problem ?? ''}\0${c.text.length}\0${c.text}\0`);
  return h.digest('hex');
}

/** Content plus the stat fields that change on every write. */
function signature(s: Snapshot): string {
  const h = createHash('sha256');
  for (const [f, c] of [...s].sort(byName)) h.update(`${f}\0${c.ino}\0${c.size}\0${c.mtimeMs}\0${c.text}\0`);
  return h.digest('hex');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class FileWatcher extends EventEmitter<WatcherEvents> {
  private readonly watchers: FSWatcher[] = [];
  private poller: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private last: Snapshot = new Map();
  private lastDigest = '';
  /** An in-place edit being watched for stability: its signature and since when. */
  private candidate: { sig: string; since: number } | undefined;
  /** Per watched file, since the last report: a rename or create event, and a write event. */
  private renamed = new Set<string>();
  private written = new Set<string>();
  private firstEventAt = 0;
  /** retry() asked for a report of the files as they are, without the settle window of an in-place edit. */
  private forced = false;
  private running = false;
  private again = false;
  private closed = false;
  private readonly opts: Required<WatchOptions>;

  /** `within`: every file must be read inside this directory (a real path); one that leads elsewhere reads as missing. */
  constructor(
    private readonly files: readonly string[],
    opts: WatchOptions = {},
    private readonly within?: string,
  ) {
    super();
    this.opts = {
      debounceMs: opts.debounceMs ?? DEFAULT_DEBOUNCE_MS,
      settleMs: opts.settleMs ?? DEFAULT_SETTLE_MS,
      recheckMs: opts.recheckMs ?? DEFAULT_RECHECK_MS,
      pollMs: opts.pollMs ?? 1_000,
    };
  }

  /** Starts watching. `initial` is what the caller already applied (defaults to what is on disk now). */
  start(initial?: Map<string, string>): Promise<void> {
    this.last = readAll(this.files, this.within);
    this.lastDigest = initial ? digestText(initial) : digest(this.last);
    for (const dir of new Set(this.files.map((f) => path.dirname(f)))) {
      try {
        const w = watch(dir, { persistent: false }, (event, name) => this.onEvent(dir, event, name));
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch {
        /* the directory may not exist yet; polling covers it */
      }
    }
    if (this.opts.pollMs > 0) this.poller = setInterval(() => this.poke(), this.opts.pollMs).unref();
    return Promise.resolve();
  }

  private onEvent(dir: string, event: string, name: string | Buffer | null): void {
    const base = name === null ? undefined : name.toString();
    for (const f of this.files) {
      if (path.dirname(f) !== dir || path.basename(f) !== base) continue;
      // inotify: a create or a rename onto the name is 'rename'; a write is 'change'.
      (event === 'rename' ? this.renamed : this.written).add(f);
    }
    this.poke();
  }

  private poke(): void {
    if (this.closed) return;
    if (this.firstEventAt === 0) this.firstEventAt = Date.now();
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.check(), this.opts.debounceMs);
  }

  /**
   * Whether every changed file arrived complete: its resolved path changed
   * (a symlink swap), or it is a new, non-empty inode announced by a rename
   * event with no write event on that name (a write would mean it is being
   * filled in place; an empty new file may be a writer that has not begun).
   */
  private arrivedByRename(now: Snapshot): boolean {
    let any = false;
    for (const f of this.files) {
      const a = this.last.get(f);
      const b = now.get(f);
      if (a?.text === b?.text) continue;
      if (!b) return false;
      any = true;
      if (a && a.real !== b.real) continue;
      if (a && a.ino !== b.ino && b.size > 0 && this.renamed.has(f) && !this.written.has(f)) continue;
      return false;
    }
    return any;
  }

  private async check(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      const first = readAll(this.files, this.within);
      const d = digest(first);
      if (d === this.lastDigest) {
        this.candidate = undefined;
        this.last = first;
      } else if (this.forced && signature(first) === signature(this.last)) {
        // Asked again (retry) and still what was last reported: complete, so no settle window. A file that changed
        // since goes the usual way below.
        this.report(first, d);
      } else if (this.arrivedByRename(first)) {
        await sleep(this.opts.recheckMs);
        const second = readAll(this.files, this.within);
        if (signature(second) !== signature(first)) this.again = true;
        else this.report(second, d);
      } else {
        const sig = signature(first);
        const now = Date.now();
        if (this.candidate?.sig !== sig) this.candidate = { sig, since: now };
        const waited = now - this.candidate.since;
        if (waited >= this.opts.settleMs) this.report(first, d);
        else this.scheduleSettle(this.opts.settleMs - waited);
      }
    } catch (err) {
      if (this.listenerCount('error') > 0) this.emit('error', err as Error);
    } finally {
      this.forced = false;
      this.running = false;
      if (this.again) {
        this.again = false;
        this.poke();
      } else if (!this.candidate) this.firstEventAt = 0;
    }
  }

  private scheduleSettle(ms: number): void {
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => void this.check(), ms);
    this.settleTimer.unref();
  }

  private report(s: Snapshot, d: string): void {
    if (this.closed) return;
    this.forced = false;
    this.last = s;
    this.lastDigest = d;
    this.candidate = undefined;
    this.renamed.clear();
    this.written.clear();
    const at = this.firstEventAt || Date.now();
    this.firstEventAt = 0;
    const read = [...s].filter(([, c]) => c.problem === undefined);
    const refused = [...s].flatMap(([f, c]): [string, string][] => (c.problem === undefined ? [] : [[f, c.problem]]));
    this.emit('change', new Map(read.map(([f, c]) => [f, c.text])), at, new Map(refused));
  }

  /**
   * Reports the files again, as they are now and even unchanged, after the
   * debounce: for an update the caller could not take yet, which would
   * otherwise wait for the next change.
   */
  retry(): void {
    this.lastDigest = '';
    this.candidate = undefined;
    this.forced = true;
    this.poke();
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers) w.close();
    if (this.poller) clearInterval(this.poller);
    if (this.debounce) clearTimeout(this.debounce);
    if (this.settleTimer) clearTimeout(this.settleTimer);
  }
}

function digestText(contents: Map<string, string>): string {
  const s: Snapshot = new Map([...contents].map(([f, text]) => [f, { text, real: '', ino: 0, size: 0, mtimeMs: 0 }]));
  return digest(s);
}

/** Code-unit order, not localeCompare: collation pulls about 2 MiB of ICU data into memory for good. */
function byName([a]: [string, unknown], [b]: [string, unknown]): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
