// Packet captures on a lab link: dumpcap on one interface, then tshark reads
// the file back. What it proves: TLS handshakes crossed the link, and none of
// the given markers (strings carried in requests and responses) crossed it in
// clear. The marker search runs over the raw capture file, independently of
// any dissector.
import type { Namespaces } from './netns.js';
import type { Proc } from './proc.js';
const { randomBytes } = process.getBuiltinModule('node:crypto');
const { existsSync, readFileSync } = process.getBuiltinModule('node:fs');

export interface WireReport {
  /** Frames in the capture. */
  frames: number;
  /** Frames carrying TCP payload. */
  payloadFrames: number;
  clientHellos: number;
  serverHellos: number;
  /** TLS records of type application_data (23). */
  appDataRecords: number;
  /** Negotiated versions seen in ServerHellos ("TLS 1.3", …). */
  versions: string[];
  /** TLS flows as "client > server" address:port pairs. */
  tlsFlows: string[];
  /** Key exchange groups the ServerHellos chose, by name ("X25519MLKEM768", …), sorted. */
  groups: string[];
  /** Each TLS session: who opened it, to whom, and the version and key exchange group the server chose. */
  sessions: { client: string; server: string; version?: string; group?: string }[];
  /** Frames per IP family. */
  ipv4Frames: number;
  ipv6Frames: number;
  /** Markers that appear anywhere in the raw capture (in clear). */
  cleartext: string[];
}

/** Sends one datagram carrying `payload` across the captured link. */
export type SendSentinel = (payload: string) => Promise<void>;

export class Capture {
  private constructor(
    readonly file: string,
    private readonly proc: Proc,
    private readonly sendSentinel: SendSentinel,
  ) {}

  /**
   * Starts dumpcap on `dev` inside `netns` and returns once the capture
   * provably records traffic: "Capturing on" only says the interface is open,
   * so a start sentinel is sent until it is in the file.
   */
  static async start(
    ns: Pick<Namespaces, 'spawn'>,
    netns: string,
    dev: string,
    file: string,
    sendSentinel: SendSentinel,
    timeoutMs = 10_000,
  ): Promise<Capture> {
    const proc = ns.spawn(netns, `dumpcap ${dev}`, ['dumpcap', '-q', '-i', dev, '-w', file], { stderrLines: true });
    const cap = new Capture(file, proc, sendSentinel);
    try {
      await proc.waitFor((l) => l.startsWith('Capturing on'), timeoutMs, '"Capturing on"');
      await cap.sentinelSeen('start', timeoutMs);
    } catch (err) {
      await proc.stop('SIGINT', 5_000);
      throw err;
    }
    return cap;
  }

  /**
   * Sends a sentinel datagram (again every second, in case one is lost) until
   * it is in the file. dumpcap writes in batches (about every 500 ms), so a
   * sentinel on disk means everything captured before it is on disk too.
   */
  private async sentinelSeen(label: string, timeoutMs: number): Promise<void> {
    const payload = `meshlet-lab-${label}-${randomBytes(6).toString('hex')}`;
    const deadline = Date.now() + timeoutMs;
    let sentAt = 0;
    while (this.proc.running && Date.now() < deadline) {
      if (Date.now() - sentAt > 1_000) {
        await this.sendSentinel(payload);
        sentAt = Date.now();
      }
      if (existsSync(this.file) && readFileSync(this.file).includes(payload)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    const why = this.proc.running ? `not in ${this.file} within ${timeoutMs} ms` : 'dumpcap exited first';
    throw new Error(`capture: the ${label} sentinel was never captured (${why}):\n${this.proc.output()}`);
  }

  /**
   * Stops the capture once everything sent so far is in the file: a stop
   * sentinel goes last, and only once it is on disk is dumpcap interrupted
   * (SIGINT, so it finishes the file). Resolves when dumpcap has exited, so
   * the file is closed and complete.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    try {
      await this.sentinelSeen('stop', timeoutMs);
    } finally {
      await this.proc.stop('SIGINT', 5_000);
    }
    const code = await this.proc.exited;
    if (code !== 0) throw new Error(`capture: dumpcap exited with ${String(code)} (the file may be incomplete):\n${this.proc.output()}`);
  }

  async analyze(ns: Pick<Namespaces, 'must'>, opts: { tlsPorts: number[]; markers: string[] }): Promise<WireReport> {
    return analyze(ns, this.file, opts);
  }
}

const VERSIONS: Record<string, string> = { '0x0304': 'TLS 1.3', '0x0303': 'TLS 1.2' };

/** TLS named groups by code point (IANA registry); anything else is shown as its number. */
const GROUPS: Record<number, string> = {
  0x11ec: 'X25519MLKEM768',
  0x001d: 'X25519',
  0x0017: 'P-256',
  0x0018: 'P-384',
  0x11eb: 'SecP256r1MLKEM768',
  0x6399: 'X25519Kyber768Draft00',
};

/** A group as tshark prints it (decimal, or hex with 0x) to its name, e.g. "4588" → "X25519MLKEM768". */
export function groupName(field: string): string {
  const n = Number(field);
  if (!Number.isInteger(n)) return field;
  return GROUPS[n] ?? `0x${n.toString(16).padStart(4, '0')}`;
}

/**
 * tshark reading `file` as tab-separated `fields`, one line per frame (every
 * occurrence of a field, comma-joined), with `tlsPorts` decoded as TLS and
 * an optional display filter. `twoPass`: a segment whose bytes are
 * reassembled into a later frame's record knows it (tcp.reassembled_in).
 */
export function tsharkFields(file: string, fields: readonly string[], tlsPorts: readonly number[], filter?: string, twoPass = false): string[] {
  const decode = [...new Set(tlsPorts)].flatMap((p) => ['-d', `tcp.port==${p},tls`]);
  return [
    'tshark',
    '-n',
    ...(twoPass ? ['-2'] : []),
    '-r',
    file,
    ...decode,
    ...(filter === undefined ? [] : ['-Y', filter]),
    '-T',
    'fields',
    '-E',
    'separator=\t',
    '-E',
    'occurrence=a',
    '-E',
    'aggregator=,',
    ...fields.flatMap((f) => ['-e', f]),
  ];
}

/** tshark fields per frame; `-d` decodes the given ports as TLS (8080 would otherwise be HTTP). */
export async function analyze(ns: Pick<Namespaces, 'must'>, file: string, opts: { tlsPorts: number[]; markers: string[] }): Promise<WireReport> {
  // TLS 1.3 hides the real record type (tls.record.opaque_type is 23 for all
  // of them) and names the version in supported_versions; TLS 1.2 in the
  // ServerHello's own version field.
  const fields = [
    'frame.number',
    'ip.src',
    'ipv6.src',
    'ip.dst',
    'ipv6.dst',
    'tcp.srcport',
    'tcp.dstport',
    'tcp.len',
    'tls.record.content_type',
    'tls.record.opaque_type',
    'tls.handshake.type',
    'tls.handshake.extensions.supported_version',
    'tls.handshake.version',
    'tls.handshake.extensions_key_share_group',
  ];
  const out = await ns.must(undefined, tsharkFields(file, fields, opts.tlsPorts), { timeoutMs: 30_000 });
  const report: WireReport = {
    frames: 0,
    payloadFrames: 0,
    clientHellos: 0,
    serverHellos: 0,
    appDataRecords: 0,
    versions: [],
    groups: [],
    tlsFlows: [],
    sessions: [],
    ipv4Frames: 0,
    ipv6Frames: 0,
    cleartext: [],
  };
  const versions = new Set<string>();
  const groups = new Set<string>();
  const sessions = new Map<string, WireReport['sessions'][number]>();
  for (const line of out.split('\n')) {
    if (line.trim() === '') continue;
    const [
      ,
      src4 = '',
      src6 = '',
      dst4 = '',
      dst6 = '',
      sport = '',
      dport = '',
      len = '',
      ctype = '',
      otype = '',
      htype = '',
      sver = '',
      hver = '',
      kgroup = '',
    ] = line.split('\t');
    report.frames++;
    if (src4) report.ipv4Frames++;
    if (src6) report.ipv6Frames++;
    if (Number(len) > 0) report.payloadFrames++;
    const types = [...ctype.split(','), ...otype.split(',')].filter(Boolean);
    const hs = htype.split(',').filter(Boolean);
    report.appDataRecords += types.filter((t) => t === '23').length;
    const src = src4 ? `${src4}:${sport}` : `[${src6}]:${sport}`;
    const dst = dst4 ? `${dst4}:${dport}` : `[${dst6}]:${dport}`;
    if (hs.includes('1')) {
      report.clientHellos++;
      sessions.set(`${src} > ${dst}`, { client: src, server: dst });
    }
    if (hs.includes('2')) {
      report.serverHellos++;
      // A ServerHello's supported_versions extension is the negotiated version (TLS 1.3); without it, its version field.
      const negotiated = sver.split(',').filter(Boolean);
      const v = negotiated[0] ?? hver.split(',').filter(Boolean).pop() ?? '';
      const version = VERSIONS[v] ?? v;
      if (version) versions.add(version);
      // A ServerHello's key share names the one group the server chose (a ClientHello's lists every share it offers).
      const chosen = kgroup.split(',').filter(Boolean)[0];
      const group = chosen === undefined ? undefined : groupName(chosen);
      if (group) groups.add(group);
      const session = sessions.get(`${dst} > ${src}`);
      if (session && version) session.version = version;
      if (session && group) session.group = group;
    }
  }
  report.versions = [...versions].sort();
  report.groups = [...groups].sort();
  report.tlsFlows = [...sessions.keys()].sort();
  report.sessions = [...sessions.values()];
  const raw = readFileSync(file);
  report.cleartext = opts.markers.filter((m) => raw.includes(Buffer.from(m)));
  return report;
}
