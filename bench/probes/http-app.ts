// The tiny HTTP/1.1 app behind the data-path row: fixed responses, no
// framework, so the app costs little next to the proxies it sits behind.
// GET /big answers 256 KiB (bulk throughput); anything else "ok\n".
// "Connection: close" in a request closes after the answer.
//   node dist/bench/probes/http-app.js PORT [HOST]
import net from 'node:net';

const port = Number(process.argv[2]);
const host = process.argv[3] ?? '0.0.0.0';
const small = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n');
const bigBody = Buffer.alloc(256 * 1024, 'x');
const big = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bigBody.length}\r\n\r\n`), bigBody]);

const server = net.createServer((s) => {
  s.setNoDelay(true);
  s.on('error', () => undefined);
  let pending = '';
  s.on('data', (d: Buffer) => {
    pending += d.toString('latin1');
    for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
      const head = pending.slice(0, end);
      pending = pending.slice(end + 4);
      s.write(head.startsWith('GET /big') ? big : small);
      if (/\r\nconnection:\s*close/i.test(head)) {
        s.end();
        return;
      }
    }
  });
});
server.listen(port, host, () => process.stdout.write(`listening ${host}:${port}\n`));
process.once('SIGTERM', () => process.exit(0));
