// New-connection latency: sequential connections, each connect + one HTTP
// request with "Connection: close" + the whole answer. Through the mesh that
// is the client's connect to the local Envoy plus the Envoy-to-Envoy mTLS
// handshake and the round trip to the app. Bounded by count and time.
//   node dist/bench/probes/conn-latency.js HOST PORT COUNT MAX_MS [wait]
// With "wait", failures are retried every 50 ms until COUNT connections
// succeeded or MAX_MS passed: a readiness check for the path.
import net from 'node:net';
import { performance } from 'node:perf_hooks';

const [host = '127.0.0.1', port = '0', count = '100', maxMs = '10000', mode = ''] = process.argv.slice(2);

function once(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    let got = '';
    const s = net.connect({ host, port: Number(port) }, () => s.write(`GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n`));
    const timer = setTimeout(() => s.destroy(new Error('timeout after 3000 ms')), 3_000);
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.once('close', () => {
      clearTimeout(timer);
      if (got.startsWith('HTTP/1.1 200') && got.endsWith('ok\n')) resolve(performance.now() - t);
      else reject(new Error(`bad answer "${got.slice(0, 40)}"`));
    });
  });
}

const samples: number[] = [];
const errors: string[] = [];
const begun = performance.now();
for (let i = 0; i < Number(count) && performance.now() - begun < Number(maxMs); i++) {
  try {
    samples.push(await once());
  } catch (err) {
    errors.push((err as Error).message);
    if (mode === 'wait') {
      i--;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
process.stdout.write(`${JSON.stringify({ samples, errors })}\n`);
