// A tiny Python probe, because Node cannot set IP_TRANSPARENT or read
// SO_ORIGINAL_DST. `serve` opens listeners (transparent unless --plain) and
// prints one JSON line per accepted connection: the local address (which for
// a TPROXY'd connection is the original destination, tproxy.rst) and
// SO_ORIGINAL_DST (set for REDIRECTed connections). It exits when its stdin
// closes, so it never outlives its parent. `connect` dials once and prints
// connected / refused / timeout / unreachable, and the banner it read.
// Usage: serve PORT... [--v4] [--v6] [--plain] [--banner=TEXT]
//        connect HOST PORT TIMEOUT_MS [SOURCE_IP]
export const PROBE_SCRIPT = String.raw`
import json, select, socket, struct, sys
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
if sys.argv[1] == 'serve':
    serve(sys.argv[2:])
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

export interface ConnectResult {
  result: ConnectOutcome;
  local?: [string, number];
  banner?: string;
  error?: string;
}

/** argv for `python3` that runs the probe. */
export function probeArgs(mode: 'serve' | 'connect', args: readonly (string | number)[]): string[] {
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
