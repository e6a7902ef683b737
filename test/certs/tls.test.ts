// The PKI helper's files, loaded through loadCerts, work for real mTLS: a Node
// tls server that requires a client certificate from the mesh CA, and clients
// that verify the server's SAN. Refused clients prove the server really checks.
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadCerts, type CertState } from '../../src/certs/index.js';
import { createPki, type Leaf, type Pki, type PkiOptions } from '../helpers/pki.js';
import { tempDir } from './fixtures.js';
import { cannotRun } from '../helpers/gate.js';

const DAY = 86_400_000;
let t: Awaited<ReturnType<typeof tempDir>>;
let dirs = 0;
const servers: tls.Server[] = [];

beforeAll(async () => {
  t = await tempDir('meshlet-tls-');
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map(async (s) => new Promise((r) => s.close(r))));
});
afterAll(async () => t.cleanup());

/** Writes the leaf as Contrast would and reads it back through loadCerts. */
async function podCerts(pki: Pki, leaf: Leaf): Promise<CertState> {
  const f = await pki.writeContrastDir(join(t.dir, `pod-${dirs++}`), leaf);
  return loadCerts({ ...f, expectedSans: leaf.sans });
}

interface Accepted {
  peerSans: string | undefined;
  authorized: boolean;
  authorizationError: string | undefined;
}

interface Started {
  port: number;
  /** The first connection the server let through to the app. */
  accepted: Promise<Accepted>;
  wasAccepted: () => boolean;
}

/** A server requiring a client certificate from the mesh CA; `reject: false` lets every client through, to read why it was not authorized. */
async function startServer(c: CertState, reject = true): Promise<Started> {
  const server = tls.createServer({ key: c.keyPem, cert: c.chainPem, ca: c.caPem, requestCert: true, rejectUnauthorized: reject });
  servers.push(server);
  let wasAccepted = false;
  const accepted = new Promise<Accepted>((resolve) => {
    server.on('secureConnection', (s) => {
      wasAccepted = true;
      // Node sets a code string (typed as Error) when unauthorized, null otherwise.
      const authorizationError = s.authorized ? undefined : String(s.authorizationError);
      resolve({ peerSans: s.getPeerCertificate().subjectaltname, authorized: s.authorized, authorizationError });
      s.end('hello from server');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, accepted, wasAccepted: () => wasAccepted };
}

/** Connects, and resolves with what the server sent, or rejects with the TLS error. */
async function connect(port: number, servername: string, c: Partial<CertState> & { caPem: string }): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: c.caPem, ...(c.keyPem === undefined ? {} : { key: c.keyPem, cert: c.chainPem }) });
  let data = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (data += d));
  await once(socket, 'close'); // once() rejects on 'error'
  socket.destroy();
  return data;
}

describe('mTLS with generated mesh certificates', () => {
  it.each<{ name: string; pki: PkiOptions; server: 'ec' | 'rsa'; client: 'ec' | 'rsa' }>([
    { name: 'EC server, EC client, root CA as mesh CA', pki: {}, server: 'ec', client: 'ec' },
    { name: 'RSA server, EC client', pki: {}, server: 'rsa', client: 'ec' },
    { name: 'Contrast layout: self-signed intermediate as mesh CA', pki: { anchor: 'intermediate' }, server: 'ec', client: 'ec' },
  ])('$name', async ({ pki: opts, server, client }) => {
    const pki = await createPki(join(t.dir, `pki-${dirs++}`), opts);
    const [s, c] = await Promise.all([
      pki.issueLeaf({ sans: ['emoji-svc'], key: server }),
      pki.issueLeaf({ sans: ['web-svc', 'spiffe://mesh/web'], key: client }),
    ]);
    const srv = await startServer(await podCerts(pki, s));
    expect(await connect(srv.port, 'emoji-svc', await podCerts(pki, c))).toBe('hello from server');
    expect(await srv.accepted).toEqual({ authorized: true, authorizationError: undefined, peerSans: 'DNS:web-svc, URI:spiffe://mesh/web' });
  });

  describe('refusals', () => {
    let pki: Pki;
    let srv: Awaited<ReturnType<typeof startServer>>;
    let serverLeaf: Leaf;
    beforeAll(async () => {
      pki = await createPki(join(t.dir, 'refuse'));
      serverLeaf = await pki.issueLeaf({ sans: ['emoji-svc'] });
    });

    it.each([
      { name: 'a client without a certificate', code: 'UNABLE_TO_GET_ISSUER_CERT', client: () => Promise.resolve({ caPem: pki.caPem }) },
      {
        name: 'a client with a certificate from another CA',
        code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
        client: async () => {
          const other = await createPki(join(t.dir, 'other-ca'), { name: 'other' });
          const leaf = await other.issueLeaf({ sans: ['web-svc'] });
          return { caPem: pki.caPem, chainPem: leaf.chainPem, keyPem: leaf.keyPem };
        },
      },
      {
        name: 'a client with an expired certificate',
        code: 'CERT_HAS_EXPIRED',
        client: async () => {
          const leaf = await pki.issueLeaf({ sans: ['web-svc'], notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
          return { caPem: pki.caPem, chainPem: leaf.chainPem, keyPem: leaf.keyPem };
        },
      },
    ])('refuses $name', async ({ client, code }) => {
      const c = await client();
      const strict = await startServer(await podCerts(pki, serverLeaf));
      // With TLS 1.3 the client may finish its side of the handshake before the
      // server drops it, so it sees an error or an empty stream: the server decides.
      const got = await connect(strict.port, 'emoji-svc', c).catch((e: unknown) => e);
      expect(got).not.toBe('hello from server');
      expect(strict.wasAccepted()).toBe(false);
      // The same client against a server that lets it through says why it was refused.
      const lenient = await startServer(await podCerts(pki, serverLeaf), false);
      await connect(lenient.port, 'emoji-svc', c);
      expect(await lenient.accepted).toMatchObject({ authorized: false, authorizationError: code });
    });

    it('client refuses a server whose SAN is not the name it dialled', async () => {
      srv = await startServer(await podCerts(pki, serverLeaf));
      const c = await pki.issueLeaf({ sans: ['web-svc'] });
      await expect(connect(srv.port, 'voting-svc', { caPem: pki.caPem, chainPem: c.chainPem, keyPem: c.keyPem })).rejects.toThrow(/altnames/);
    });
  });
});

const hasOpenssl = ((): boolean => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(cannotRun('OpenSSL strict verification', hasOpenssl ? undefined : 'needs the openssl command'))(
  'generated certificates pass OpenSSL strict verification',
  () => {
    it.each(['ec', 'rsa'] as const)('%s leaf: openssl verify -x509_strict as TLS server and client', async (key) => {
      const pki = await createPki(join(t.dir, `strict-${key}`));
      const leaf = await pki.issueLeaf({ sans: ['emoji-svc'], key });
      const f = await pki.writeContrastDir(join(t.dir, `strict-${key}-pod`), leaf);
      for (const purpose of ['sslserver', 'sslclient']) {
        const out = execFileSync('openssl', ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', f.ca, '-untrusted', f.certChain, f.certChain], {
          encoding: 'utf8',
        });
        expect(out.trim()).toBe(`${f.certChain}: OK`);
      }
    });
  },
);
