// A tiny Python probe, because Node cannot set IP_TRANSPARENT or read
// SO_ORIGINAL_DST. `serve` opens listeners (transparent unless --plain) and
// prints one JSON line per accepted connection: the local address (which for
// a TPROXY'd connection is the original destination, tproxy.rst) and
// SO_ORIGINAL_DST (set for REDIRECTed connections). It exits when its stdin
// closes, so it never outlives its parent. `connect` dials once and prints
// connected / refused / timeout / unreachable, and the banner it read.
// `dns-serve` answers DNS over UDP and TCP on an IPv4 address and, with
// --v6, on [::1] at the same port: the reply is the query with the QR bit
// set and the banner appended after the message (parsers ignore trailing
// bytes). `dns-query` sends one query and prints who answered: the reply's
// source address (the original destination, after the kernel undoes the
// DNAT) and the banner.
// Usage: serve PORT... [--v4] [--v6] [--plain] [--banner=TEXT]
//        connect HOST PORT TIMEOUT_MS [SOURCE_IP]
//        dns-serve ADDR PORT [--v6[=ADDR6]] [--banner=TEXT]   (ADDR6 defaults to ::1)
//        dns-query HOST PORT udp|tcp TIMEOUT_MS [SOURCE_PORT]
export const PROBE_SCRIPT = String.raw`
import json, os, select, socket, struct, sys
SOL_IP, SOL_IPV6, IP_TRANSPARENT, IPV6_TRANSPARENT, IPV6_V6ONLY, SO_ORIGINAL_DST = 0, 41, 19, 75, 26, 80
def out(**kw):
    print(json.dumps(kw), flush=True)
def orig_dst(c, v6):
    try:
        if v6:
            raw = c.getsockopt(SOL_IPV6, SO_ORIGINAL_DST, 28)
            return [socket.inet_ntop(socket.AF_INET6, raw[8:24]), struct.unpack('!H', raw[2:4])[0]]
        raw = c.getsockopt(SOL_IP, SO_ORIGINAL_DST, 16)
        return [socket.inet_ntop(socket.AF_INET, raw[4:8]), struct.unpack('!H', raw[2:4])[0]]
    except OSError:
        return None
def serve(args):
    plain = '--plain' in args
    banner = ([a[9:] for a in args if a.startswith('--banner=')] or ['meshlet-probe'])[0]
    fams = [f for f in ('4', '6') if '--v' + f in args] or ['4']
    ports = [int(a) for a in args if a.isdigit()]
    socks = {}
    for p in ports:
        for f in fams:
            v6 = f == '6'
            s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if v6:
                s.setsockopt(SOL_IPV6, IPV6_V6ONLY, 1)
            if not plain:
                s.setsockopt(SOL_IPV6 if v6 else SOL_IP, IPV6_TRANSPARENT if v6 else IP_TRANSPARENT, 1)
            try:
                s.bind(('::' if v6 else '0.0.0.0', p))
            except OSError as e:
                out(event='error', port=p, family=int(f), error=str(e))
                sys.exit(3)
            s.listen(128)
            socks[s] = (p, v6)
    out(event='ready')
    while True:
        ready, _, _ = select.select(list(socks) + [sys.stdin], [], [])
        for s in ready:
            if s is sys.stdin:
                if not sys.stdin.readline():
                    sys.exit(0)
                continue
            c, peer = s.accept()
            p, v6 = socks[s]
            local = c.getsockname()
            out(event='accept', listen=p, family=6 if v6 else 4, local=[local[0], local[1]], peer=[peer[0], peer[1]], origDst=orig_dst(c, v6))
            try:
                c.sendall((banner + '\n').encode())
            except OSError:
                pass
            c.close()
def connect(args):
    host, port, timeout = args[0], int(args[1]), int(args[2]) / 1000.0
    s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if len(args) > 3:
        s.bind((args[3], 0))
    try:
        s.connect((host, port))
        local = s.getsockname()
        try:
            banner = s.recv(64).decode(errors='replace').strip()
        except OSError:
            banner = ''
        out(result='connected', local=[local[0], local[1]], banner=banner)
    except ConnectionRefusedError:
        out(result='refused')
    except socket.timeout:
        out(result='timeout')
    except OSError as e:
        out(result='unreachable' if e.errno in (101, 113) else 'error', error=str(e))
def dns_reply(q, banner):
    return q[:2] + bytes([q[2] | 0x80]) + q[3:] + banner.encode()
def dns_serve(args):
    addr, port = args[0], int(args[1])
    banner = ([a[9:] for a in args if a.startswith('--banner=')] or ['meshlet-probe'])[0]
    v6 = ([a[5:] or '::1' for a in args if a.startswith('--v6')] or [None])[0]
    binds = [(socket.AF_INET, addr)] + ([(socket.AF_INET6, v6)] if v6 else [])
    udp, tcp = [], []
    for fam, a in binds:
        u = socket.socket(fam, socket.SOCK_DGRAM)
        t = socket.socket(fam, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            u.setsockopt(SOL_IPV6, IPV6_V6ONLY, 1)
            t.setsockopt(SOL_IPV6, IPV6_V6ONLY, 1)
        try:
            u.bind((a, port))
            t.bind((a, port))
        except OSError as e:
            out(event='error', port=port, address=a, error=str(e))
            sys.exit(3)
        t.listen(64)
        udp.append(u)
        tcp.append(t)
    out(event='ready')
    while True:
        ready, _, _ = select.select(udp + tcp + [sys.stdin], [], [])
        for s in ready:
            if s is sys.stdin:
                if not sys.stdin.readline():
                    sys.exit(0)
            elif s in udp:
                q, peer = s.recvfrom(4096)
                out(event='dns', proto='udp', peer=[peer[0], peer[1]])
                if len(q) >= 12:
                    s.sendto(dns_reply(q, banner), peer)
            else:
                c, peer = s.accept()
                out(event='dns', proto='tcp', peer=[peer[0], peer[1]], origDst=orig_dst(c, s.family == socket.AF_INET6))
                c.settimeout(2)
                try:
                    n = struct.unpack('!H', c.recv(2))[0]
                    q = c.recv(n)
                    r = dns_reply(q, banner)
                    c.sendall(struct.pack('!H', len(r)) + r)
                except (OSError, struct.error):
                    pass
                c.close()
def dns_query(args):
    host, port, proto, timeout = args[0], int(args[1]), args[2], int(args[3]) / 1000.0
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    qid = int.from_bytes(os.urandom(2), 'big')
    q = struct.pack('!HHHHHH', qid, 0x0100, 1, 0, 0, 0) + b'\x05probe\x07meshlet\x04test\x00' + struct.pack('!HH', 1, 1)
    s = socket.socket(fam, socket.SOCK_DGRAM if proto == 'udp' else socket.SOCK_STREAM)
    s.settimeout(timeout)
    if len(args) > 4:
        s.bind(('::' if fam == socket.AF_INET6 else '0.0.0.0', int(args[4])))
    try:
        s.connect((host, port))
        if proto == 'udp':
            s.send(q)
            r = s.recv(4096)
        else:
            s.sendall(struct.pack('!H', len(q)) + q)
            n = struct.unpack('!H', s.recv(2))[0]
            r = b''
            while len(r) < n:
                chunk = s.recv(n - len(r))
                if not chunk:
                    break
                r += chunk
        peer = s.getpeername()
        banner = r[len(q):].decode(errors='replace') if r[:2] == q[:2] else ''
        out(result='answered', local=[s.getsockname()[0], s.getsockname()[1]], peer=[peer[0], peer[1]], banner=banner, size=len(r))
    except ConnectionRefusedError:
        out(result='refused')
    except socket.timeout:
        out(result='timeout')
    except OSError as e:
        out(result='error', error=str(e))
if sys.argv[1] == 'serve':
    serve(sys.argv[2:])
elif sys.argv[1] == 'dns-serve':
    dns_serve(sys.argv[2:])
elif sys.argv[1] == 'dns-query':
    dns_query(sys.argv[2:])
else:
    connect(sys.argv[2:])
`;

export interface ProbeAccept {
  event: 'accept';
  listen: number;
  family: 4 | 6;
  local: [string, number];
  peer: [string, number];
  origDst: [string, number] | null;
}

export type ConnectOutcome = 'connected' | 'refused' | 'timeout' | 'unreachable' | 'error';

/** What `dns-query` saw: who answered (after the kernel undid any DNAT) and their banner. */
export interface DnsQueryResult {
  result: 'answered' | 'refused' | 'timeout' | 'error';
  local?: [string, number];
  peer?: [string, number];
  banner?: string;
  error?: string;
}

export function parseDnsQuery(stdout: string, stderr: string): DnsQueryResult {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as DnsQueryResult;
  } catch {
    return { result: 'error', error: (stderr || stdout).trim() || 'no output from the probe' };
  }
}

export interface ConnectResult {
  result: ConnectOutcome;
  local?: [string, number];
  banner?: string;
  error?: string;
}

/** argv for `python3` that runs the probe. */
export function probeArgs(mode: 'serve' | 'connect' | 'dns-serve' | 'dns-query', args: readonly (string | number)[]): string[] {
  return ['-c', PROBE_SCRIPT, mode, ...args.map(String)];
}

export function parseConnect(stdout: string, stderr: string): ConnectResult {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ConnectResult;
  } catch {
    return { result: 'error', error: (stderr || stdout).trim() || 'no output from the probe' };
  }
}
