// Waiting on events, not time: a log of things a test observes (output
// lines, server events) that a test can wait on. Every wait is bounded and
// its timeout says what it waited for and what was seen instead.
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';

export class EventLog<T> {
  readonly items: T[] = [];
  private readonly waiters = new Set<() => void>();

  push(item: T): void {
    this.items.push(item);
    for (const w of [...this.waiters]) w();
  }

  get length(): number {
    return this.items.length;
  }

  /** The first item from index `from` on (past or future) that matches; rejects at the deadline, naming `what`. */
  waitFor(match: (item: T) => boolean, timeoutMs: number, what: string, from = 0): Promise<T> {
    return new Promise((resolve, reject) => {
      let next = from;
      const check = (): void => {
        for (; next < this.items.length; next++) {
          const item = this.items[next] as T;
          if (match(item)) {
            finish();
            resolve(item);
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        finish();
        const seen = this.items
          .slice(from)
          .slice(-20)
          .map((i) => (typeof i === 'string' ? i : JSON.stringify(i)));
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen:\n${seen.join('\n')}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }
}

/** Every complete line `stream` writes, pushed to `log` (a partial last line is held until its newline). */
export function collectLines(stream: Readable | null | undefined, log: EventLog<string>): void {
  let buf = '';
  stream?.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      log.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
}

/**
 * The command line of `pid` (NUL-separated), or '' when there is no such
 * process. Read in one step: a process can end between a check and a read,
 * and scans of /proc meet that often on a busy machine.
 */
export function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** No such process, or only its zombie (it is dead; its new parent has not reaped it yet). */
export function procGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}
