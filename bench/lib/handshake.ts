// Handshake bytes on the wire, read from a capture of pod A's veth: per TCP
// connection to a given port, the ClientHello and ServerHello records (the
// only cleartext handshake messages under TLS 1.3, and the ones carrying the
// key shares) and every TCP payload byte both ways.
import { readFileSync, writeFileSync } from 'node:fs';
import { analyze, Capture, tsharkFields } from '../../src/demo/capture.js';
import { Namespaces } from '../../src/demo/netns.js';
import { must } from './procs.js';

/**
 * Bench-only: rewrites every TLS context of a static bootstrap to offer
 * `groups` instead of meshlet's pinned list. The product config has no
 * classic-only setting on purpose; this exists to price the hybrid group.
 * Returns how many contexts it changed.
 */
export function overrideGroups(bootstrapPath: string, groups: string[]): number {
  let n = 0;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (Array.isArray(o['ecdh_curves'])) {
        o['ecdh_curves'] = [...groups];
        n++;
      }
      Object.values(o).forEach(walk);
    }
  };
  const json = JSON.parse(readFileSync(bootstrapPath, 'utf8')) as unknown;
  walk(json);
  writeFileSync(bootstrapPath, `${JSON.stringify(json, null, 2)}\n`);
  return n;
}

/** The group each ServerHello chose, per server "ip:port", as read from the capture. */
export async function chosenGroups(file: string, ports: number[]): Promise<Map<string, string[]>> {
  const r = await analyze(new Namespaces('mlbench'), file, { tlsPorts: ports, markers: [] });
  const out = new Map<string, string[]>();
  for (const s of r.sessions) out.set(s.server, [...(out.get(s.server) ?? []), s.group ?? '?']);
  return out;
}

export interface HandshakeBytes {
  clientHello: number[];
  serverHello: number[];
  /** TCP payload per connection, both directions (handshake + request + answer + close). */
  perConnection: number[];
}

/** dumpcap on `dev` in `ns`; started once a sentinel datagram from `ns` to `peer` is in the file. */
export async function startCapture(ns: string, dev: string, peer: string, file: string): Promise<Capture> {
  // Only spawn/exec: the namespaces belong to the caller, so this never adds or deletes one.
  const runner = new Namespaces('mlbench');
  const send = async (payload: string): Promise<void> => {
    const script = `const s=require('node:dgram').createSocket('udp4');s.send(process.argv[1],9,process.argv[2],()=>s.close())`;
    await must(['ip', 'netns', 'exec', ns, process.execPath, '-e', script, payload, peer], 10_000);
  };
  return Capture.start(runner, ns, dev, file, send);
}

/** Per connection to `port` in the capture `file` (TLS records decoded on that port). */
export async function handshakeBytes(file: string, port: number): Promise<HandshakeBytes> {
  const fields = ['tcp.stream', 'tcp.srcport', 'tcp.dstport', 'tcp.len', 'tls.handshake.type', 'tls.record.length'];
  const out = await must(tsharkFields(file, fields, [port], `tcp.port==${port}`), 60_000);
  const streams = new Map<string, { ch: number; sh: number; bytes: number }>();
  for (const line of out.split('\n')) {
    if (line.trim() === '') continue;
    const [stream = '', , , len = '0', htype = '', rlen = ''] = line.split('\t');
    let s = streams.get(stream);
    if (!s) streams.set(stream, (s = { ch: 0, sh: 0, bytes: 0 }));
    s.bytes += Number(len);
    const types = htype.split(',');
    const lengths = rlen.split(',').map(Number);
    // A ClientHello or ServerHello is alone in its record: the first record of its frame. 5 bytes of record header.
    if (types.includes('1')) s.ch += (lengths[0] ?? 0) + 5;
    if (types.includes('2')) s.sh += (lengths[0] ?? 0) + 5;
  }
  const done = [...streams.values()].filter((s) => s.ch > 0 && s.sh > 0);
  return { clientHello: done.map((s) => s.ch), serverHello: done.map((s) => s.sh), perConnection: done.map((s) => s.bytes) };
}
