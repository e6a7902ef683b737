// Writes whole log lines to a file descriptor synchronously, so the lines
// before a crash are on the fd when the process dies and no two lines mix.
// stdout is usually a pipe that Node has made non-blocking: a write can take
// part of a line or fail with EAGAIN while the reader (the container runtime)
// is behind, so the rest is written after a short wait, however long that
// takes; a line is never dropped for a slow reader. A reader that is gone
// (EPIPE) or an fd that is closed (EBADF) must not take meshlet down with
// it: the sink stops writing, says so once on stderr, and counts what it drops.
const { writeSync } = process.getBuiltinModule('node:fs');

export interface LogSink {
  write(line: string): void;
}

/** Errors after which the fd will never take a line again. */
const GONE = new Set(['EPIPE', 'EBADF', 'ECONNRESET', 'ENOTCONN', 'EDESTADDRREQ']);

// Made on first use: a module's top level also runs when the startup snapshot is built (src/snapshot.ts), where
// SharedArrayBuffer is not available.
let waitCell: Int32Array | undefined;
/** Blocks the thread for `ms` without spinning; the log call is synchronous by design. */
function pause(ms: number): void {
  Atomics.wait((waitCell ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, ms);
}

export interface FdSinkOptions {
  /** Called before each wait for a full pipe (the tests use it to see the wait happen). */
  onWait?: (waits: number) => void;
  /** Where the one notice about a failed fd goes; stderr unless given. */
  noticeFd?: number;
}

export class FdSink implements LogSink {
  /** Lines not written because the fd failed. */
  dropped = 0;
  /** Waits for a full pipe so far. */
  waits = 0;
  /** Set once the fd is gone for good; later lines are dropped without a write. */
  closed: string | undefined;
  private noticed = false;

  constructor(
    readonly fd: number,
    private readonly opts: FdSinkOptions = {},
  ) {}

  write(line: string): void {
    if (this.closed !== undefined) {
      this.dropped++;
      return;
    }
    const buf = Buffer.from(line, 'utf8');
    let off = 0;
    let backoff = 1;
    while (off < buf.length) {
      try {
        off += writeSync(this.fd, buf, off, buf.length - off);
        backoff = 1;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? 'unknown';
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
          this.waits++;
          this.opts.onWait?.(this.waits);
          pause(backoff);
          backoff = Math.min(backoff * 2, 64);
          continue;
        }
        if (code === 'EINTR') continue;
        this.fail(code, off > 0);
        return;
      }
    }
  }

  private fail(code: string, partial: boolean): void {
    this.dropped++;
    if (GONE.has(code)) this.closed = code;
    if (this.noticed) return;
    this.noticed = true;
    const what = this.closed ? 'meshlet keeps running and drops every further log line' : 'meshlet keeps running; this line is dropped';
    const notice = JSON.stringify({
      level: 50,
      time: new Date(Date.now()).toISOString(),
      app: 'meshlet',
      fd: this.fd,
      code,
      partial,
      msg: `log output failed (${code}): ${what}`,
    });
    try {
      writeSync(this.opts.noticeFd ?? 2, `${notice}\n`);
    } catch {
      // stderr is gone too; nothing else can carry the notice.
    }
  }
}
