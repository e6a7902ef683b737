// Watches files for changes the way Kubernetes updates them: a mounted
// ConfigMap or Secret swaps a `..data` symlink in the file's directory, so a
// watch on the file itself misses the change. We watch each parent directory,
// keep a polling fallback (inotify can be unavailable or miss events on some
// volume types), debounce, and only report content that is stable across two
// reads, so a half-written file is never handed on.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { EventEmitter } from 'node:events';

export interface WatchOptions {
  /** Wait this long after the last event before reading. */
  debounceMs?: number;
  /** Re-read after this long and require identical bytes. */
  settleMs?: number;
  /** Polling fallback interval; 0 disables polling. */
  pollMs?: number;
}

export interface WatcherEvents {
  /** Stable new contents of every watched file (missing files are absent). */
  change: [contents: Map<string, string>, changedAt: number];
  error: [err: Error];
}

async function readAll(files: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await Promise.all(
    files.map(async (f) => {
      try {
        out.set(f, await readFile(f, 'utf8'));
      } catch {
        /* a missing file is reported by whoever validates the contents */
      }
    }),
  );
  return out;
}

function digest(contents: Map<string, string>): string {
  const h = createHash('sha256');
  // Code-unit order, not localeCompare: collation pulls about 2 MiB of ICU data into memory for good.
  for (const [f, c] of [...contents].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) h.update(`${f}\0${c.length}\0${c}\0`);
  return h.digest('hex');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class FileWatcher extends EventEmitter<WatcherEvents> {
  private readonly watchers: FSWatcher[] = [];
  private poller: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastDigest = '';
  private firstEventAt = 0;
  private running = false;
  private again = false;
  private closed = false;
  private readonly opts: Required<WatchOptions>;

  constructor(
    private readonly files: readonly string[],
    opts: WatchOptions = {},
  ) {
    super();
    this.opts = { debounceMs: opts.debounceMs ?? 10, settleMs: opts.settleMs ?? 5, pollMs: opts.pollMs ?? 1_000 };
  }

  /** Starts watching. `initial` is what the caller already applied. */
  async start(initial?: Map<string, string>): Promise<void> {
    this.lastDigest = digest(initial ?? (await readAll(this.files)));
    for (const dir of new Set(this.files.map((f) => path.dirname(f)))) {
      try {
        const w = watch(dir, { persistent: false }, () => this.poke());
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch {
        /* the directory may not exist yet; polling covers it */
      }
    }
    if (this.opts.pollMs > 0) this.poller = setInterval(() => this.poke(), this.opts.pollMs).unref();
  }

  private poke(): void {
    if (this.closed) return;
    if (this.firstEventAt === 0) this.firstEventAt = Date.now();
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.check(), this.opts.debounceMs);
  }

  private async check(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      const first = await readAll(this.files);
      const d = digest(first);
      if (d !== this.lastDigest) {
        await sleep(this.opts.settleMs);
        const second = await readAll(this.files);
        if (digest(second) !== d) this.again = true;
        else if (!this.closed) {
          this.lastDigest = d;
          const at = this.firstEventAt || Date.now();
          this.emit('change', second, at);
        }
      }
    } catch (err) {
      this.emit('error', err as Error);
    } finally {
      this.running = false;
      if (!this.again) this.firstEventAt = 0;
      if (this.again) {
        this.again = false;
        this.poke();
      }
    }
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers) w.close();
    if (this.poller) clearInterval(this.poller);
    if (this.debounce) clearTimeout(this.debounce);
  }
}
