// Egress capture through DNS, end to end. Three namespaces on one
// bridge: pod A (the client), pod B (the server) and a "cluster DNS".
// Both pods run the real `meshlet init` and `meshlet run` with a real Envoy.
// The app in pod A has zero mesh config: it dials `emoji-svc:8080` by name.
// meshlet's DNS answers that name with the route's listen address, Envoy
// originates mTLS to pod B, and a capture on pod A's link shows TLS only.
// A name that is not a route name resolves exactly as before, through the
// cluster DNS. Addresses: 198.18.53.0/24 only; every namespace is deleted.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createPki, type Pki } from '../../src/devpki/pki.js';
import { Capture, tsharkFields } from '../../src/demo/capture.js';
import { asUid } from '../../src/demo/proc.js';
import { NetLab, netnsUnavailable } from '../helpers/netns.js';
import { CLI, MESHLET } from '../helpers/meshlet.js';
import { cannotRun } from '../helpers/gate.js';
import { collectLines, EventLog } from '../helpers/wait.js';

const ADDR = { a: '198.18.53.1', b: '198.18.53.2', dns: '198.18.53.53', other: '198.18.77.77' } as const;
const APP_UID = 1000;
const SEARCH = 'demo.svc.cluster.local svc.cluster.local cluster.local';
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const ENVOY = existsSync('/usr/local/bin/envoy') ? ['--envoy', '/usr/local/bin/envoy'] : [];

function unavailable(): string | undefined {
  const netns = netnsUnavailable();
  if (netns) return netns;
  if (!existsSync(CLI) || !existsSync(path.resolve('dist/src/dns/index.js'))) return 'needs `npm run build` (runs the built CLI)';
  return undefined;
}

// The "cluster DNS": A records from a table, NODATA for other types of a
// known name, NXDOMAIN otherwise; one JSON line per query. Written without
// meshlet's codec, so it also checks that codec against another reader.
const CLUSTER_DNS = String.raw`
import json, socket, struct, sys
records = json.loads(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print(json.dumps({"ev": "ready"}), flush=True)
while True:
    q, peer = s.recvfrom(4096)
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode().lower()); i += 1 + q[i]
    name, qtype = '.'.join(labels), struct.unpack('!H', q[i + 1:i + 3])[0]
    print(json.dumps({"ev": "query", "name": name, "type": qtype, "from": peer[0]}), flush=True)
    ip = records.get(name)
    answers = struct.pack('!HHHIH', 0xc00c, 1, 1, 30, 4) + socket.inet_aton(ip) if ip and qtype == 1 else b''
    flags = 0x8580 if ip else 0x8583
    s.sendto(q[:2] + struct.pack('!HHHHH', flags, 1, 1 if answers else 0, 0, 0) + q[12:i + 5] + answers, peer)
`;

// Pod B's app: a plain TCP server that reports what it got and from whom.
const ECHO_APP = String.raw`
import json, socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 8080)); s.listen(16)
print(json.dumps({"ev": "ready"}), flush=True)
while True:
    c, peer = s.accept(); c.settimeout(5)
    try:
        data = c.recv(4096).decode()
        print(json.dumps({"ev": "got", "peer": peer[0], "data": data}), flush=True)
        c.sendall(('pong:' + data).encode())
    except OSError:
        pass
    c.close()
`;

// Pod A's app: resolve a name the way any libc program does, or dial it.
const CLIENT = String.raw`
import json, socket, struct, sys
mode, name = sys.argv[1], sys.argv[2]
try:
    if mode == 'resolve':
        print(json.dumps({"addrs": sorted({a[4][0] for a in socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)})}))
    elif mode == 'tcp-dns':
        q = struct.pack('!HHHHHH', 0x5a5a, 0x0100, 1, 0, 0, 0)
        q += b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\0' + struct.pack('!HH', 1, 1)
        s = socket.create_connection((sys.argv[3], 53), timeout=5); s.sendall(struct.pack('!H', len(q)) + q)
        n = struct.unpack('!H', s.recv(2))[0]; r = b''
        while len(r) < n: r += s.recv(n - len(r))
        print(json.dumps({"id": struct.unpack('!H', r[:2])[0], "answers": struct.unpack('!H', r[6:8])[0], "a": socket.inet_ntoa(r[-4:])}))
    elif mode == 'dot':
        import ssl
        ctx = ssl.create_default_context(cafile=sys.argv[3]); ctx.check_hostname = False
        q = struct.pack('!HHHHHH', 0x0d07, 0x0100, 1, 0, 0, 0) + b'\x05dot-q\x04test\x00' + struct.pack('!HH', 1, 1)
        s = ctx.wrap_socket(socket.create_connection((name, 853), timeout=5))
        s.sendall(struct.pack('!H', len(q)) + q)
        print(json.dumps({"result": "answered " + s.recv(512).hex()}))
    else:
        s = socket.create_connection((name, int(sys.argv[3])), timeout=5); s.sendall(sys.argv[4].encode())
        reply = b''
        while True:
            chunk = s.recv(4096)
            if not chunk: break
            reply += chunk
            if len(reply) >= len(sys.argv[4]) + 5: break
        print(json.dumps({"peer": s.getpeername()[0], "reply": reply.decode()}))
except OSError as e:  # ssl.SSLError is an OSError
    print(json.dumps({"error": type(e).__name__, "detail": str(e)}))
`;

// An outside DNS-over-TLS server (port 853) with a certificate from a public
// CA, not the mesh's: one JSON line per handshake and per message received.
const DOT_SERVER = String.raw`
import json, socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[2], sys.argv[3])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 853)); s.listen(8)
print(json.dumps({"ev": "ready"}), flush=True)
while True:
    c, peer = s.accept(); c.settimeout(5)
    try:
        t = ctx.wrap_socket(c, server_side=True)
        print(json.dumps({"ev": "handshake", "ok": True}), flush=True)
        m = t.recv(512)
        print(json.dumps({"ev": "data", "bytes": m.hex()}), flush=True)
        t.sendall(m[:4] + bytes([m[4] | 0x80]) + m[5:])
    except (ssl.SSLError, OSError) as e:
        print(json.dumps({"ev": "handshake", "ok": False, "error": str(e)}), flush=True)
    c.close()
`;

// The app doing its own DNS over TLS: trusts the public CA, sends one framed query.
const DOT_CLIENT = String.raw`
import socket, ssl, struct, sys
ctx = ssl.create_default_context(cafile=sys.argv[2]); ctx.check_hostname = False
q = struct.pack('!HHHHHH', 0x0d07, 0x0100, 1, 0, 0, 0) + b'\x05dot-q\x04test\x00' + struct.pack('!HH', 1, 1)
try:
    s = ctx.wrap_socket(socket.create_connection((sys.argv[1], 853), timeout=5))
    s.sendall(struct.pack('!H', len(q)) + q)
    print('answered', s.recv(512).hex())
except (ssl.SSLError, OSError) as e:
    print('failed', type(e).__name__, e)
`;

// TLS to pod B with the mesh CA but no client certificate.
const NO_CERT_CLIENT = String.raw`
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3]); ctx.check_hostname = False
try:
    s = ctx.wrap_socket(socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5))
    s.sendall(sys.argv[4].encode())
    print('reply', s.recv(100))
except (ssl.SSLError, OSError) as e:
    print('refused', e)
`;

interface PodDir {
  ns: string;
  dir: string;
  config: string;
  meshlet?: ChildProcess;
  /** meshlet's log, one line per entry. */
  output: EventLog<string>;
}

const skip = cannotRun('dns end to end', unavailable());

describe.skipIf(skip)('egress capture through DNS, end to end', () => {
  const lab = new NetLab('mld');
  const root = mkdtempSync(path.join(tmpdir(), 'meshlet-dns-e2e-'));
  // Envoy runs as uid 1337 and must reach the sockets and bootstraps inside.
  chmodSync(root, 0o755);
  const marker = `dns-e2e-${process.pid}-${Date.now()}`;
  let pki: Pki;
  let a: PodDir;
  let b: PodDir;
  let dnsNs: string;
  let clusterDns: ChildProcess;
  const dnsLog = new EventLog<{ ev: string; name?: string; type?: number; from?: string }>();
  const before: Record<string, unknown> = {};

  const client = async (...args: string[]): Promise<Record<string, unknown>> => {
    const r = await lab.exec(a.ns, asUid(APP_UID, [PYTHON, '-c', CLIENT, ...args]), {
      timeoutMs: 15_000,
    });
    return JSON.parse(r.stdout.trim().split('\n').pop() || '{}') as Record<string, unknown>;
  };

  async function makePod(label: string, extra: Record<string, unknown>, sans: string[]): Promise<PodDir> {
    // `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf: the pod's own resolver settings.
    const ns = await lab.netns(label, { 'resolv.conf': `search ${SEARCH}\nnameserver ${ADDR.dns}\noptions ndots:5\n` });
    const dir = path.join(root, label);
    mkdirSync(path.join(dir, 'run'), { recursive: true });
    chmodSync(dir, 0o755);
    const files = await pki.writeContrastDir(path.join(dir, 'certs'), await pki.issueLeaf({ sans }));
    const config = path.join(dir, 'config.yaml');
    writeFileSync(
      config,
      stringify({
        certs: { ca: files.ca, certChain: files.certChain, key: files.key },
        proxy: { xdsSocket: path.join(dir, 'run', 'xds.sock'), bootstrapPath: path.join(dir, 'run', 'envoy.json') },
        ...extra,
      }),
    );
    return { ns, dir, config, output: new EventLog<string>() };
  }

  async function init(pod: PodDir): Promise<void> {
    await lab.must(pod.ns, [process.execPath, ...MESHLET, 'init', '--config', pod.config]);
  }

  async function run(pod: PodDir): Promise<void> {
    const child = spawn('ip', ['netns', 'exec', pod.ns, process.execPath, ...MESHLET, 'run', '--config', pod.config, '--drain-seconds', '0', ...ENVOY], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MESHLET_LOG_LEVEL: 'debug' },
    });
    collectLines(child.stdout, pod.output);
    collectLines(child.stderr, pod.output);
    pod.meshlet = child;
    // /ready (rules in place, Envoy ACKed, listeners active), asked from inside the pod by the product's own bounded wait.
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`meshlet in ${pod.ns} exited (${code}): ${pod.output.items.join('\n')}`))),
    );
    // Only the race below may see this rejection; once ready, the exit at teardown is expected.
    exited.catch(() => undefined);
    const ready = lab.exec(pod.ns, [process.execPath, ...MESHLET, 'wait-ready', '--config', pod.config, '--timeout', '60'], { timeoutMs: 70_000 });
    const r = await Promise.race([ready, exited]);
    if (r.code !== 0) throw new Error(`meshlet in ${pod.ns} never became ready: ${r.stderr}\n${pod.output.items.slice(-30).join('\n')}`);
  }

  async function stop(pod: PodDir | undefined): Promise<void> {
    const child = pod?.meshlet;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGTERM');
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 10_000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Starts a long-lived python script in `ns` and waits for its ready line. */
  async function python<T>(ns: string, script: string, args: string[], sink: EventLog<T>): Promise<ChildProcess> {
    const child = spawn('ip', ['netns', 'exec', ns, PYTHON, '-c', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${ns}: no ready line (${err})`)), 5000);
      let buf = '';
      child.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
          buf = buf.slice(nl + 1);
          if (line['ev'] === 'ready') {
            clearTimeout(t);
            resolve();
          } else sink.push(line as T);
        }
      });
      child.once('exit', () => reject(new Error(`${ns}: exited (${err})`)));
    });
    children.push(child);
    return child;
  }
  const children: ChildProcess[] = [];
  const appB = new EventLog<{ ev: string; peer: string; data: string }>();

  beforeAll(async () => {
    pki = await createPki(path.join(root, 'pki'));
    a = await makePod(
      'a',
      {
        ingress: { mode: 'disabled' },
        // Portless: the app dials emoji-svc:<any port>, Envoy keeps the port and resolves emoji-svc itself.
        // Capture too, which is what refuses DNS-over-TLS/HTTPS that would bypass the DNS server (docs/dns.md).
        egress: { routes: [{ name: 'emoji', listen: '127.137.0.1', remote: 'emoji-svc', names: ['emoji-svc'] }], capture: true },
        // meshlet runs as root here, so root is the uid its forwarded queries must leave with.
        dns: { enabled: true, meshletUid: 0, ttl: 3 },
      },
      ['web'],
    );
    b = await makePod('b', { ingress: { mode: 'tproxy', default: 'mtls' } }, ['emoji-svc']);
    dnsNs = await lab.netns('dns');
    const br = await lab.bridge(dnsNs, [`${ADDR.dns}/24`]);
    for (const [pod, ip] of [
      [a, ADDR.a],
      [b, ADDR.b],
    ] as const) {
      const [, far] = await lab.veth({ ns: pod.ns, ifname: 'eth0', addrs: [`${ip}/24`] }, { ns: dnsNs });
      await lab.attach(dnsNs, far, br);
    }
    clusterDns = await python(
      dnsNs,
      CLUSTER_DNS,
      [ADDR.dns, JSON.stringify({ 'emoji-svc.demo.svc.cluster.local': ADDR.b, 'other-svc.demo.svc.cluster.local': ADDR.other })],
      dnsLog,
    );
    await python(b.ns, ECHO_APP, [], appB);

    // How pod A resolves before the mesh is there: the baseline for "resolves as before".
    for (const name of ['other-svc', 'nope-svc', 'emoji-svc']) before[name] = await client('resolve', name);

    await init(b);
    await run(b);
    await init(a);
    await run(a);
  }, 120_000);

  afterAll(async () => {
    await stop(a);
    await stop(b);
    for (const c of [...children, clusterDns]) if (c && c.exitCode === null) c.kill('SIGKILL');
    // Anything still alive in our namespaces (an Envoy orphaned by a killed meshlet) goes by pid, with the /etc/netns files.
    await lab.cleanup();
    rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it('before the mesh, emoji-svc resolves to pod B through the cluster DNS', () => {
    expect(before['emoji-svc']).toEqual({ addrs: [ADDR.b] });
  });

  it('the app resolves emoji-svc to the route address; meshlet answered it without asking upstream', async () => {
    const queriesBefore = dnsLog.length;
    expect(await client('resolve', 'emoji-svc')).toEqual({ addrs: ['127.137.0.1'] });
    // The fully qualified name matches too, and so does a TCP query (as after a truncated answer).
    expect(await client('resolve', 'emoji-svc.demo.svc.cluster.local')).toEqual({ addrs: ['127.137.0.1'] });
    expect(await client('tcp-dns', 'emoji-svc.demo.svc.cluster.local', ADDR.dns)).toEqual({ id: 0x5a5a, answers: 1, a: '127.137.0.1' });
    // A forwarded name is logged by the cluster DNS after anything it got before, so once it shows, an emoji-svc query would have too.
    await client('resolve', 'other-svc');
    await dnsLog.waitFor((q) => q.name === 'other-svc.demo.svc.cluster.local', 10_000, 'the cluster DNS to log the flush query for other-svc', queriesBefore);
    expect(dnsLog.items.slice(queriesBefore).filter((q) => q.name?.startsWith('emoji-svc'))).toEqual([]);
    await a.output.waitFor(
      (l) => /"qname":"emoji-svc.demo.svc.cluster.local","route":"emoji","rcode":0,"transport":"udp".*"msg":"dns: answered"/.test(l),
      10_000,
      'meshlet logging the UDP answer for emoji-svc',
    );
    await a.output.waitFor((l) => /"transport":"tcp".*"msg":"dns: answered"/.test(l), 10_000, 'meshlet logging the TCP answer');
  });

  it('a name that is not allowlisted resolves exactly as before, forwarded to the cluster DNS', async () => {
    const queriesBefore = dnsLog.length;
    expect(await client('resolve', 'other-svc')).toEqual(before['other-svc']);
    expect(before['other-svc']).toEqual({ addrs: [ADDR.other] });
    // A name nobody knows fails the same way it did.
    const nope = await client('resolve', 'nope-svc');
    expect(nope).toEqual(before['nope-svc']);
    expect(nope['error']).toBe('gaierror');
    // meshlet forwarded them from pod A's address (its own uid is exempt), search-expanded by the app's resolver.
    for (const name of ['other-svc.demo.svc.cluster.local', 'nope-svc.demo.svc.cluster.local']) {
      await dnsLog.waitFor((q) => q.name === name && q.from === ADDR.a, 10_000, `the cluster DNS to log ${name} from pod A`, queriesBefore);
    }
    await a.output.waitFor(
      (l) => /"qname":"other-svc.demo.svc.cluster.local".*"ok":true,"msg":"dns: forwarded"/.test(l),
      10_000,
      'meshlet logging the forwarded other-svc query',
    );
    // Both outcomes are counted on meshlet's /metrics.
    const scrape = "import urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:15020/metrics', timeout=2).read().decode())";
    const metrics = (await lab.must(a.ns, [PYTHON, '-c', scrape])).split('\n');
    const count = (outcome: string): number =>
      Number(metrics.find((l) => l.startsWith(`meshlet_dns_queries_total{outcome="${outcome}"}`))?.split(' ')[1] ?? -1);
    expect(count('answered')).toBeGreaterThanOrEqual(2);
    expect(count('forwarded')).toBeGreaterThanOrEqual(2);
    expect(count('loops')).toBe(0);
  });

  it('the app dials emoji-svc:8080 by name and reaches pod B over mTLS; the link carries TLS only', async () => {
    const pcap = path.join(root, 'a.pcapng');
    // Sentinels go from the cluster DNS namespace to pod A over UDP: they cross eth0, which is all the capture needs.
    const sentinel = async (payload: string): Promise<void> => {
      await lab.must(dnsNs, [
        PYTHON,
        '-c',
        'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(sys.argv[2].encode(), (sys.argv[1], 9))',
        ADDR.a,
        payload,
      ]);
    };
    // Returns once a start sentinel is in the file, so the capture sees everything the test does next.
    const cap = await Capture.start(lab.namespaces, a.ns, 'eth0', pcap, sentinel);

    const r = await client('dial', 'emoji-svc', '8080', marker);
    expect(r).toEqual({ peer: '127.137.0.1', reply: `pong:${marker}` });
    // Pod B's app got the bytes from its own Envoy (127.0.0.6), which terminated mTLS.
    await appB.waitFor((g) => g.data === marker, 10_000, "pod B's app logging the marker");
    expect(appB.items).toContainEqual({ ev: 'got', peer: '127.0.0.6', data: marker });

    // Sends a stop sentinel after the exchange, waits until it is in the file, then SIGINT and waits for dumpcap to exit.
    await cap.stop();
    // 8080 is HTTP to tshark; decode it as TLS, which is what must be on it.
    const fields = async (filter: string, ...f: string[]): Promise<string[]> => {
      // Two passes, so a segment whose bytes tshark reassembles into a later TLS record knows it.
      const out = await lab.must(undefined, tsharkFields(pcap, f, [8080], filter, true));
      return out.trim().split('\n').filter(Boolean);
    };
    const raw = readFileSync(pcap);
    expect(raw.length).toBeGreaterThan(4000);
    expect(raw.indexOf(Buffer.from(marker))).toBe(-1);
    // A TLS handshake from pod A to pod B's app port and encrypted records; that it is mutual TLS shows below.
    expect(await fields('tls.handshake.type == 1', 'ip.src', 'ip.dst', 'tcp.dstport')).toContain(`${ADDR.a}\t${ADDR.b}\t8080`);
    expect((await fields('tls.app_data && tcp.dstport == 8080', 'ip.dst')).length).toBeGreaterThan(0);
    expect((await fields('tls.app_data && tcp.srcport == 8080', 'ip.dst')).length).toBeGreaterThan(0);
    // Every segment with payload to the app port is TLS: a TLS record, part of one that is reassembled in a later
    // frame, or a TCP retransmission of such a segment (a busy machine retransmits; the copy carries bytes already
    // checked). Anything else is listed with its first payload bytes.
    const notTls = await fields(
      'tcp.dstport == 8080 && tcp.len > 0 && !tls && !tcp.reassembled_in' +
        ' && !tcp.analysis.retransmission && !tcp.analysis.fast_retransmission && !tcp.analysis.spurious_retransmission',
      'frame.number',
      'tcp.payload',
    );
    expect(notTls.map((l) => l.slice(0, 120))).toEqual([]);
    // Pod B demands a mesh client certificate: the same dial without one, from outside, is refused.
    const noCert = await lab.exec(dnsNs, [PYTHON, '-c', NO_CERT_CLIENT, ADDR.b, '8080', path.join(root, 'pki', 'mesh-ca.pem'), `${marker}-nocert`], {
      timeoutMs: 15_000,
    });
    expect(noCert.stdout).toMatch(/CERTIFICATE_REQUIRED|refused/i);
    // Anything the app got would be logged before this later dial through the mesh, which it does get.
    const flush = `${marker}-flush`;
    expect(await client('dial', 'emoji-svc', '8080', flush)).toEqual({ peer: '127.137.0.1', reply: `pong:${flush}` });
    await appB.waitFor((g) => g.data === flush, 10_000, "pod B's app logging the flush dial");
    expect(appB.items.map((g) => g.data)).not.toContain(`${marker}-nocert`);
    // Envoy (the proxy uid, exempt) resolved emoji-svc through the cluster DNS, not through meshlet.
    await dnsLog.waitFor(
      (q) => q.name === 'emoji-svc.demo.svc.cluster.local' && q.from === ADDR.a,
      10_000,
      "the cluster DNS to log Envoy's emoji-svc query from pod A",
    );
  });

  it(
    'with capture on, the app cannot bypass the DNS server with its own DNS over TLS: ' +
      'Envoy wraps it in mesh mTLS, which the outside server cannot complete',
    async () => {
      const publicCa = await createPki(path.join(root, 'public-ca'), { name: 'public' });
      const leaf = await publicCa.writeContrastDir(path.join(root, 'dot'), await publicCa.issueLeaf({ sans: ['dns.example.test'] }));
      const dot = new EventLog<Record<string, unknown>>();
      await python(dnsNs, DOT_SERVER, [ADDR.dns, leaf.certChain, leaf.key], dot);
      // Control: from outside the pod (no capture) the same client gets its answer bytes through.
      const direct = await lab.exec(b.ns, [PYTHON, '-c', DOT_CLIENT, ADDR.dns, leaf.ca], { timeoutMs: 15_000 });
      expect(direct.stdout).toMatch(/^answered/);
      const seen = dot.length;
      const viaMesh = await client('dot', ADDR.dns, leaf.ca);
      // The app's TLS session dies before its handshake: Envoy resets it once its own upstream handshake fails.
      expect(viaMesh).not.toHaveProperty('result');
      expect(viaMesh['error']).toMatch(/Reset|SSL|EOF|BrokenPipe/);
      // The server saw a handshake it could not finish (Envoy, not trusting its CA, aborted) and never a query.
      // The server logs a failed handshake and goes on to the next connection; a query it got would be logged before that.
      const failed = await dot.waitFor((e) => e['ev'] === 'handshake', 10_000, 'the DNS-over-TLS server to log the handshake through the mesh', seen);
      expect(failed).toMatchObject({ ev: 'handshake', ok: false });
      expect(String(failed['error'])).toMatch(/unknown ca|alert/i);
      expect(dot.items.slice(seen).filter((e) => e['ev'] === 'data')).toEqual([]);
    },
  );

  it('a config reload changes the names meshlet answers, with no restart', async () => {
    const text = readFileSync(a.config, 'utf8').replace('names:\n        - emoji-svc', 'names:\n        - emoji-svc\n        - emoji.mesh.test');
    expect(text).toContain('emoji.mesh.test');
    writeFileSync(`${a.config}.tmp`, text);
    const from = a.output.length;
    await lab.must(undefined, ['mv', `${a.config}.tmp`, a.config]);
    await a.output.waitFor((l) => l.includes('"msg":"dns name table reloaded"'), 20_000, 'meshlet logging "dns name table reloaded"', from);
    expect(await client('resolve', 'emoji.mesh.test')).toEqual({ addrs: ['127.137.0.1'] });
    expect(a.meshlet?.exitCode).toBeNull();
  });
});
