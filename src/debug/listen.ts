// Binding a pod-facing listener on every address of the pod: dual-stack
// `::` where the kernel has IPv6, else 0.0.0.0. The metrics and the probes
// listeners both bind this way.
import type { Server } from 'node:http';

/** Listens on `port` on both families, or on IPv4 alone without IPv6; errors name `what`. */
export async function listenDualStack(server: Server, port: number, what: string): Promise<void> {
  const listen = (host: string, ipv6Only?: boolean): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, ...(ipv6Only === undefined ? {} : { ipv6Only }) }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  try {
    await listen('::', false);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw new Error(`${what} ${port}: ${(err as Error).message}`);
    await listen('0.0.0.0');
  }
}
