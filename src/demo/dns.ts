// A tiny authoritative DNS responder for the lab (UDP and TCP port 53, both
// families): answers A and AAAA from a fixed table, NXDOMAIN otherwise, and
// prints every query as a JSON line so the lab can see who asked.
//
//   node dns.js '{"records":{"db.mesh.test":{"A":["198.18.0.100"]}}}'
const dgram = process.getBuiltinModule('node:dgram');
const net = process.getBuiltinModule('node:net');

export interface DnsConfig {
  records: Record<string, { A?: string[]; AAAA?: string[] }>;
  port?: number;
}

export interface DnsEvent {
  ev: 'query' | 'listening';
  name?: string;
  type?: string;
  proto?: 'udp' | 'tcp';
  peer?: string;
}

function readName(b: Buffer, at: number): { name: string; next: number } {
  const labels: string[] = [];
  while (at < b.length) {
    const len = b[at] ?? 0;
    if (len === 0) return { name: labels.join('.').toLowerCase(), next: at + 1 };
    labels.push(b.subarray(at + 1, at + 1 + len).toString('ascii'));
    at += len + 1;
  }
  return { name: labels.join('.').toLowerCase(), next: at };
}

function ipv6Bytes(ip: string): Buffer {
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') && tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function respond(cfg: DnsConfig, q: Buffer, proto: 'udp' | 'tcp', peer: string): Buffer {
  const { name, next } = readName(q, 12);
  const qtype = q.readUInt16BE(next);
  const type = qtype === 1 ? 'A' : qtype === 28 ? 'AAAA' : String(qtype);
  process.stdout.write(`${JSON.stringify({ ev: 'query', name, type, proto, peer: peer.replace(/^::ffff:/, '') } satisfies DnsEvent)}\n`);
  const entry = cfg.records[name];
  const values = type === 'A' ? (entry?.A ?? []) : type === 'AAAA' ? (entry?.AAAA ?? []) : [];
  const question = q.subarray(12, next + 4);
  const rcode = entry ? 0 : 3;
  const header = Buffer.from([q[0] ?? 0, q[1] ?? 0, 0x84 | ((q[2] ?? 0) & 0x01), 0x80 | rcode, 0, 1, 0, values.length, 0, 0, 0, 0]);
  const answers = values.map((v) => {
    const data = type === 'A' ? Buffer.from(v.split('.').map(Number)) : ipv6Bytes(v);
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(qtype, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(30, 6);
    rr.writeUInt16BE(data.length, 10);
    return Buffer.concat([rr, data]);
  });
  return Buffer.concat([header, question, ...answers]);
}

function main(): void {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as DnsConfig;
  const port = cfg.port ?? 53;
  const udp = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  udp.on('message', (m, rinfo) => udp.send(respond(cfg, m, 'udp', rinfo.address), rinfo.port, rinfo.address));
  const tcp = net.createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const r = respond(cfg, msg, 'tcp', s.remoteAddress ?? '');
        s.write(Buffer.concat([Buffer.from([r.length >> 8, r.length & 0xff]), r]));
      }
    });
  });
  let pending = 2;
  const ready = (): void => {
    if (--pending === 0) process.stdout.write(`${JSON.stringify({ ev: 'listening' } satisfies DnsEvent)}\n`);
  };
  udp.bind({ port, address: '::' }, ready);
  tcp.listen({ port, host: '::', ipv6Only: false }, ready);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}

main();
