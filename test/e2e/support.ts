// Shared pieces of the end-to-end suite: unique markers, the client
// certificates the refusal tests use, and assertions about what an app saw.
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { App, ClientFiles, MeshLab, ProbeResult } from '../../src/demo/lab.js';

/** A string that occurs nowhere else: put it in a request, then look for it on the wire and in the app. */
export function marker(label: string): string {
  return `${label}-${randomBytes(5).toString('hex')}`;
}

export interface Clients {
  /** Signed by the mesh CA (the valid client). */
  mesh: ClientFiles;
  /** Signed by an unrelated CA, with a SAN the mesh would accept. */
  otherCa: ClientFiles;
  /** Signed by the mesh CA, expired yesterday. */
  expired: ClientFiles;
  /** Only the mesh CA, to verify the server; no client certificate. */
  none: Pick<ClientFiles, 'ca'>;
}

export async function makeClients(lab: MeshLab): Promise<Clients> {
  const day = 24 * 3600_000;
  const other = await lab.otherPki('other-ca');
  const [mesh, stranger, expired] = await Promise.all([
    lab.pki.issueLeaf({ sans: ['web-svc'] }),
    other.issueLeaf({ sans: ['web-svc'] }),
    lab.pki.issueLeaf({ sans: ['web-svc'], notBefore: new Date(Date.now() - 2 * day), notAfter: new Date(Date.now() - day) }),
  ]);
  const meshFiles = await lab.clientFiles('mesh', mesh);
  return {
    mesh: meshFiles,
    otherCa: { ...(await lab.clientFiles('other-ca', stranger, other)), ca: meshFiles.ca },
    expired: await lab.clientFiles('expired', expired),
    none: { ca: meshFiles.ca },
  };
}

/**
 * The certificate options of an `openssl s_server` on the outside host: a
 * mesh-CA leaf for "outside" as the certificate and the chain, and its key.
 */
export async function outsideServerTls(lab: MeshLab): Promise<string[]> {
  const files = await lab.clientFiles('outside-server', await lab.pki.issueLeaf({ sans: ['outside'] }));
  return ['-cert', files.cert, '-cert_chain', files.cert, '-key', files.key];
}

/** No HTTP answer, and nothing of the request came back. */
export function expectNoAnswer(r: ProbeResult, mark: string): void {
  expect(r.ok, JSON.stringify(r)).toBe(false);
  expect(r.status).toBeUndefined();
  expect(r.received ?? '').not.toContain(mark);
  expect(r.received ?? '').not.toContain('HTTP/1.1');
}

/** Every chunk of bytes the app received since `mark` (the event index), joined. */
export function bytesSeen(app: App, since: number): string {
  return app
    .dataSince(since)
    .map((e) => e.head)
    .join('\n');
}

/**
 * Waits until the app has logged a request for `path` (a request sent after
 * the ones under test, so their bytes, had any arrived, are logged before).
 */
export async function requestLogged(app: App, path: string): Promise<void> {
  await app.waitFor((e) => e.ev === 'request' && e.path === path, 5_000, `a request for ${path}`);
}

/**
 * Runs the suite's own set-up (picking pods, writing client files), then starts
 * the lab; if either fails, the lab is torn down before the error goes on, so
 * a failed beforeAll leaves no namespace behind.
 */
export async function startOrClose(lab: MeshLab, setup: () => void | Promise<void> = () => undefined): Promise<void> {
  try {
    await setup();
    await lab.start();
  } catch (err) {
    await lab.close();
    throw err;
  }
}
