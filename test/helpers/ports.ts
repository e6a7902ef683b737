// Ports for test servers that must be named before they bind: an app the test
// stops and starts again on the same port, a port a probe is told about
// before its app exists, a DNS server on UDP and TCP. Drawn at random below
// the kernel's ephemeral range (32768-60999 here) and below the pod blocks of
// helpers/meshlet.ts (20000-32699). A port taken with listen(0) and freed for
// later use could be handed, in between, to another test file's listen(0) or
// outgoing connection (test files run in parallel): seen as a health app
// failing with EADDRINUSE in a full run. Not 15000-15099 either: meshlet's
// default ports live there (15001, 15006, 15020, 15053, ...), and a test
// config whose server takes one of them is refused.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';

const FIRST = 12_000;
const LAST = 14_999;

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    // '::' without ipv6Only also holds the IPv4 port: free on both families.
    srv.listen({ port, host: '::' }, () => srv.close(() => resolve(true)));
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', () => resolve(false));
    sock.bind(port, '127.0.0.1', () => sock.close(() => resolve(true)));
  });
}

/** Ports this test file was given already: it may not have bound them yet. */
const handedOut = new Set<number>();

/** A port nothing holds now, over TCP (both families) and, with udp, over UDP on 127.0.0.1. */
export async function freeLowPort(opts: { udp?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = randomInt(FIRST, LAST + 1);
    if (handedOut.has(port)) continue;
    if ((await tcpFree(port)) && (!opts.udp || (await udpFree(port)))) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${FIRST}-${LAST} after 50 tries`);
}
