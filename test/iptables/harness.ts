// A two-namespace test bed: a "pod" with meshlet's rules and a "peer" that
// plays every outside host. Addresses come from 198.18.0.0/15 and
// 2001:db8::/32 only.
import { existsSync } from 'node:fs';
import { afterEach, beforeEach } from 'vitest';
import type { Backend } from '../../src/iptables/backend.js';
import type { IptablesDeps } from '../../src/iptables/deps.js';
import { parseConnect, parseDnsQuery, probeArgs, type ConnectResult, type DnsQueryResult, type ProbeAccept } from '../../src/iptables/probe-script.js';
import type { StartedProcess } from '../../src/iptables/process.js';
import { NetLab } from '../helpers/netns.js';
import { asUid } from '../../src/demo/proc.js';

export const ADDR = {
  podV4: '198.18.0.1',
  peerV4: '198.18.0.2',
  podV6: '2001:db8:1::1',
  peerV6: '2001:db8:1::2',
  /** Outside hosts reached through the peer. */
  remoteV4: '198.18.5.5',
  remoteV6: '2001:db8:5::5',
  /** Outside hosts inside the CIDRs the capture fixture excludes. */
  excludedV4: '198.18.6.6',
  excludedV6: '2001:db8:6::6',
  /** Outside hosts that are neither resolvers (fixtures.ts RESOLV_CONF) nor excluded. */
  strangerV4: '198.18.7.7',
  strangerV6: '2001:db8:7::7',
} as const;

/** A system-wide interpreter, so setpriv'd clients (uid 1337) can run it too. */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export const BACKENDS: Backend[] = ['nft', 'legacy'];

export interface Bed {
  lab: NetLab;
  pod: string;
  peer: string;
  deps(backend: Backend): IptablesDeps;
}

export async function makeBed(lab: NetLab): Promise<Bed> {
  const pod = await lab.netns('pod');
  const peer = await lab.netns('peer');
  const [podIf] = await lab.veth(
    { ns: pod, ifname: 'eth0', addrs: [`${ADDR.podV4}/24`, `${ADDR.podV6}/64`] },
    {
      ns: peer,
      ifname: 'eth0',
      addrs: [
        `${ADDR.peerV4}/24`,
        `${ADDR.peerV6}/64`,
        `${ADDR.remoteV4}/32`,
        `${ADDR.excludedV4}/32`,
        `${ADDR.strangerV4}/32`,
        `${ADDR.remoteV6}/128`,
        `${ADDR.excludedV6}/128`,
        `${ADDR.strangerV6}/128`,
      ],
    },
  );
  await lab.must(pod, ['ip', 'route', 'add', 'default', 'via', ADDR.peerV4, 'dev', podIf]);
  await lab.must(pod, ['ip', '-6', 'route', 'add', 'default', 'via', ADDR.peerV6, 'dev', podIf]);
  return { lab, pod, peer, deps: (backend) => ({ runner: lab.runner(pod), backend }) };
}

/**
 * The bed every namespace suite uses: a fresh lab and bed before each test,
 * torn down after it, also when the test fails. `prepare` runs on the new
 * bed (e.g. rules of another tool that must survive ours).
 */
export function useBed(prepare?: (bed: Bed) => Promise<void>): { readonly lab: NetLab; readonly bed: Bed } {
  let current: { lab: NetLab; bed: Bed } | undefined;
  beforeEach(async () => {
    const lab = new NetLab();
    current = { lab, bed: await makeBed(lab) };
    await prepare?.(current.bed);
  });
  afterEach(async () => {
    await current?.lab.cleanup();
    current = undefined;
  });
  const now = (): { lab: NetLab; bed: Bed } => {
    if (!current) throw new Error('useBed: used outside a test');
    return current;
  };
  return {
    get lab() {
      return now().lab;
    },
    get bed() {
      return now().bed;
    },
  };
}

export interface ServeOptions {
  plain?: boolean;
  banner?: string;
}

/** Starts a probe listener inside `ns` on v4 and v6 and waits until it listens. */
export async function serve(lab: NetLab, ns: string, ports: number[], opts: ServeOptions = {}): Promise<StartedProcess> {
  const args = [...ports, '--v4', '--v6', ...(opts.plain ? ['--plain'] : []), `--banner=${opts.banner ?? 'proxy'}`];
  const p = lab.spawn(ns, [PYTHON, ...probeArgs('serve', args)]);
  const first = await p.waitFor((l) => l.includes('"event"'), 5000);
  if (!first.includes('"ready"')) throw new Error(`probe failed: ${first}`);
  return p;
}

export interface DialOptions {
  timeoutMs?: number;
  uid?: number;
  source?: string;
}

/** One connection from inside `ns`; what happened and the banner it read. */
export async function dial(lab: NetLab, ns: string, host: string, port: number, opts: DialOptions = {}): Promise<ConnectResult> {
  const args = [host, port, opts.timeoutMs ?? 2000, ...(opts.source ? [opts.source] : [])];
  const r = await lab.exec(ns, asUid(opts.uid, [PYTHON, ...probeArgs('connect', args)]), { timeoutMs: (opts.timeoutMs ?? 2000) + 5000 });
  return parseConnect(r.stdout, r.stderr);
}

/** Waits (bounded) for the listener to report a connection that matches. */
export async function accepted(p: StartedProcess, match: (a: ProbeAccept) => boolean, timeoutMs = 2000): Promise<ProbeAccept> {
  const line = await p.waitFor((l) => l.includes('"accept"') && match(JSON.parse(l) as ProbeAccept), timeoutMs);
  return JSON.parse(line) as ProbeAccept;
}

export function acceptsOf(p: StartedProcess): ProbeAccept[] {
  return p.lines.filter((l) => l.includes('"accept"')).map((l) => JSON.parse(l) as ProbeAccept);
}

/** A DNS responder inside `ns` on `v4:port` and `[v6]:port` (UDP and TCP) that signs its answers with `banner`. */
export async function serveDns(lab: NetLab, ns: string, v4: string, port: number, v6: string, banner: string): Promise<StartedProcess> {
  const p = lab.spawn(ns, [PYTHON, ...probeArgs('dns-serve', [v4, port, `--v6=${v6}`, `--banner=${banner}`])]);
  const first = await p.waitFor((l) => l.includes('"event"'), 5000);
  if (!first.includes('"ready"')) throw new Error(`dns probe failed: ${first}`);
  return p;
}

/** One DNS query from inside `ns` as `uid`, optionally from a fixed source port. */
export async function queryDns(lab: NetLab, ns: string, host: string, transport: 'udp' | 'tcp', uid: number, sourcePort?: number): Promise<DnsQueryResult> {
  const args = [host, 53, transport, 2000, ...(sourcePort === undefined ? [] : [sourcePort])];
  const r = await lab.exec(ns, asUid(uid, [PYTHON, ...probeArgs('dns-query', args)]), { timeoutMs: 7000 });
  return parseDnsQuery(r.stdout, r.stderr);
}

/** iptables-save of both families (counters dropped), ip rules, lo addresses and routes. */
export async function snapshot(lab: NetLab, ns: string, backend: Backend): Promise<string> {
  const parts: string[] = [];
  for (const cmd of [`iptables-${backend}-save`, `ip6tables-${backend}-save`]) {
    const out = await lab.must(ns, [cmd]);
    parts.push(
      out
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .map((l) => l.replace(/\[\d+:\d+\]/, '[0:0]'))
        .join('\n'),
    );
  }
  for (const argv of [
    ['ip', 'rule'],
    ['ip', '-6', 'rule'],
    ['ip', 'addr', 'show', 'dev', 'lo'],
    ['ip', 'route', 'show', 'table', 'all'],
    ['ip', '-6', 'route', 'show', 'table', 'all'],
  ]) {
    parts.push(await lab.must(ns, argv));
  }
  return parts.join('\n----\n');
}

/** Rules someone else owns, in every table and family meshlet touches. */
export async function addForeignRules(lab: NetLab, ns: string, backend: Backend): Promise<void> {
  for (const bin of [`iptables-${backend}`, `ip6tables-${backend}`]) {
    for (const table of ['raw', 'mangle', 'nat', 'filter']) {
      await lab.must(ns, [bin, '-w', '-t', table, '-N', 'OTHER_CHAIN']);
      await lab.must(ns, [bin, '-w', '-t', table, '-A', 'OTHER_CHAIN', '-p', 'udp', '-j', 'RETURN']);
      await lab.must(ns, [bin, '-w', '-t', table, '-A', 'OUTPUT', '-p', 'udp', '-j', 'OTHER_CHAIN']);
    }
  }
  await lab.must(ns, ['ip', 'rule', 'add', 'fwmark', '0x7', 'lookup', '77', 'priority', '777']);
}

/**
 * One ICMP (v6) echo from inside `ns` as root, on a raw socket. "eperm": a
 * rule in OUTPUT dropped it (the kernel reports that to the sender at once);
 * "reply": the host answered; "timeout": neither within timeoutMs.
 */
export async function ping(lab: NetLab, ns: string, host: string, timeoutMs = 1500): Promise<'reply' | 'eperm' | 'timeout'> {
  const script = `
import socket, sys, time, os
host, t = sys.argv[1], float(sys.argv[2]) / 1000
v6 = ':' in host
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
ident = os.getpid() & 0xffff
body = bytes([128 if v6 else 8, 0, 0, 0]) + ident.to_bytes(2, 'big') + (1).to_bytes(2, 'big') + b'meshlet'
if not v6:
    c = sum(int.from_bytes(body[i:i + 2].ljust(2, b'\\0'), 'big') for i in range(0, len(body), 2))
    c = (c >> 16) + (c & 0xffff); c += c >> 16
    body = body[:2] + ((~c) & 0xffff).to_bytes(2, 'big') + body[4:]
try:
    s.sendto(body, (host, 0))
except PermissionError:
    print('eperm'); sys.exit(0)
s.settimeout(t)
end = time.time() + t
while time.time() < end:
    try:
        data = s.recv(2048)
    except socket.timeout:
        break
    icmp = data if v6 else data[(data[0] & 0x0f) * 4:]
    if icmp[0] == (129 if v6 else 0) and icmp[4:6] == ident.to_bytes(2, 'big'):
        print('reply'); sys.exit(0)
print('timeout')
`;
  const r = await lab.exec(ns, [PYTHON, '-c', script, host, String(timeoutMs)], { timeoutMs: timeoutMs + 5000 });
  const out = r.stdout.trim();
  if (out !== 'reply' && out !== 'eperm' && out !== 'timeout') throw new Error(`ping ${host} from ${ns}: ${r.stdout} ${r.stderr}`);
  return out;
}
