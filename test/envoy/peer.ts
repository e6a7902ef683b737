// Drives fixtures/peer.ts inside a namespace: one request, one answer, each
// with a deadline.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { asUid, type Proc } from '../../src/demo/proc.js';
import type { NetLab } from '../helpers/netns.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'peer.ts');
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Reply {
  id: number;
  ok: boolean;
  error?: string;
  data?: string;
}

export interface BackendGreeting {
  server: string;
  port: number;
  client: string | null;
  sni: string | null;
}

export interface AppGreeting {
  server: 'app';
  port: number;
  peer: string | null;
}

export interface TlsDial {
  ca: string;
  cert?: string;
  key?: string;
}

export class Peer {
  private nextId = 1;

  private constructor(private readonly proc: Proc) {}

  /**
   * Starts the peer in `ns`, as `uid` when given (so owner-matching iptables
   * rules can tell it from Envoy). The lab stops it when it cleans up.
   */
  static async start(lab: NetLab, ns: string, opts: { uid?: number; timeoutMs?: number } = {}): Promise<Peer> {
    const node = [process.execPath, '--import', 'tsx', FIXTURE];
    const cmd = asUid(opts.uid, node);
    const peer = new Peer(lab.namespaces.spawn(ns, 'peer', cmd, { cwd: REPO }));
    await peer.await(0, opts.timeoutMs ?? 15_000);
    return peer;
  }

  /** The answer line with this id (past or future); rejects at the deadline or when the peer exits. */
  private async await(id: number, timeoutMs: number): Promise<Reply> {
    const line = await this.proc.waitFor((l) => idOf(l) === id, timeoutMs, `an answer to peer request ${id}`);
    return JSON.parse(line) as Reply;
  }

  private async request(cmd: Record<string, unknown>, timeoutMs: number): Promise<Reply> {
    const id = this.nextId++;
    const answer = this.await(id, timeoutMs);
    this.proc.write(`${JSON.stringify({ id, ...cmd })}\n`);
    return answer;
  }

  async serve(name: string, port: number, files: { cert: string; key: string; ca: string }): Promise<void> {
    const r = await this.request({ op: 'serve', name, port, ...files }, 5000);
    if (!r.ok) throw new Error(`backend ${name} on ${port}: ${r.error ?? 'failed'}`);
  }

  /** A plain TCP server that answers with the peer address it sees. */
  async app(port: number): Promise<void> {
    const r = await this.request({ op: 'app', port }, 5000);
    if (!r.ok) throw new Error(`app on ${port}: ${r.error ?? 'failed'}`);
  }

  /** Dials plain TCP (or TLS with `tls`) and reads until the peer closes. */
  dial(host: string, port: number, opts: { tls?: TlsDial; send?: string; timeoutMs?: number } = {}): Promise<Reply> {
    const { timeoutMs = 5000, ...rest } = opts;
    return this.request({ op: 'dial', host, port, timeoutMs, ...rest }, timeoutMs + 1000);
  }

  /** What the server said, parsed, or null when the connection carried nothing (refused). */
  async said<T = AppGreeting>(host: string, port: number, tls?: TlsDial): Promise<T | null> {
    const r = await this.dial(host, port, tls ? { tls } : {});
    return r.data ? (JSON.parse(r.data) as T) : null;
  }

  /** The backend's greeting, or null when the connection carried nothing (refused). */
  greeting(host: string, port: number): Promise<BackendGreeting | null> {
    return this.said<BackendGreeting>(host, port);
  }
}

function idOf(line: string): number | undefined {
  try {
    return (JSON.parse(line) as Partial<Reply>).id;
  } catch {
    return undefined;
  }
}
