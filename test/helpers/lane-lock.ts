// A machine-wide mutex for test files that must not overlap: an abstract Unix
// socket that only one process can bind. The kernel frees it when the holder
// exits, so a crashed worker never leaves a stale lock behind. The name holds
// the lane and the checkout's path, so two checkouts (two CI runs on one
// machine) each keep their own lanes.
//
// A waiter connects to the holder and waits for that connection to close,
// which happens when the holder releases the lane or dies: an event, not a
// polling loop.
import { createHash } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface LaneLock {
  /** Milliseconds spent waiting for the lane. */
  waitedMs: number;
  release(): Promise<void>;
}

export function laneSocketName(lane: string, root: string): string {
  const h = createHash('sha256').update(root).digest('hex').slice(0, 16);
  return `\0meshlet-test-lane-${lane}-${h}`;
}

function tryBind(name: string): Promise<{ server: Server; clients: Set<Socket> } | undefined> {
  return new Promise((resolve, reject) => {
    const clients = new Set<Socket>();
    const server = createServer((s) => {
      clients.add(s);
      s.on('close', () => clients.delete(s));
      s.on('error', () => s.destroy());
    });
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(undefined) : reject(err)));
    server.listen({ path: name, exclusive: true }, () => resolve({ server, clients }));
  });
}

/** Resolves when the current holder lets go (or at once, when nobody holds it any more). */
function holderGone(name: string, deadline: number): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ path: name });
    const timer = setTimeout(() => s.destroy(), Math.max(0, deadline - Date.now()));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Takes the lane, waiting at most `timeoutMs`; the error names the lane. */
export async function acquireLane(lane: string, root: string, timeoutMs = 20 * 60_000): Promise<LaneLock> {
  const name = laneSocketName(lane, root);
  const start = Date.now();
  const deadline = start + timeoutMs;
  for (;;) {
    const held = await tryBind(name);
    if (held) {
      held.server.unref();
      return {
        waitedMs: Date.now() - start,
        release: () =>
          new Promise<void>((resolve) => {
            held.server.close(() => resolve());
            for (const c of held.clients) c.destroy();
          }),
      };
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `test lane "${lane}" stayed taken for ${timeoutMs} ms: another test file of this lane never finished (is a vitest worker of this checkout stuck?)`,
      );
    }
    await holderGone(name, deadline);
  }
}
