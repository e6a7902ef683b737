// Run by sink.test.ts as its own process, so that fd 1 is a real pipe the
// test controls: `flood` writes more than a pipe holds while the test does not
// read; `epipe` logs after the test has closed the pipe's read end.
import { writeSync } from 'node:fs';
import { createLogger, FdSink } from '../../src/log.js';

const mode = process.argv[2];
const report = (o: object): void => void writeSync(2, `${JSON.stringify(o)}\n`);

if (mode === 'flood') {
  // Node makes a pipe on stdout non-blocking when process.stdout is first used, as meshlet's own start does.
  void process.stdout;
  const count = Number(process.argv[3]);
  const sink = new FdSink(1, { onWait: (n) => n === 1 && report({ event: 'waiting' }) });
  const log = createLogger({ level: 'info', sink });
  for (let i = 0; i < count; i++) {
    // Lines from 100 bytes to 200 KiB: the long ones are larger than the pipe, so they go in parts.
    const size = i % 7 === 0 ? 200 * 1024 : 100 + ((i * 37) % 3000);
    log.info({ i, payload: String.fromCharCode(97 + (i % 26)).repeat(size) }, 'flood');
  }
  report({ event: 'done', waits: sink.waits, dropped: sink.dropped });
} else if (mode === 'epipe') {
  const sink = new FdSink(1);
  const log = createLogger({ level: 'info', sink });
  process.stdin.once('data', () => {
    for (let i = 0; i < 3; i++) log.info({ i }, 'after the reader left');
    report({ event: 'survived', closed: sink.closed, dropped: sink.dropped });
    process.exit(0);
  });
} else throw new Error(`sink-child: unknown mode ${mode}`);
