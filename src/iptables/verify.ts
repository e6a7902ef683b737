// `meshlet init --verify`: proves, inside the pod, that the applied rules
// really redirect traffic, the way Istio's validation mode does. A probe
// listens on the proxy's ports (so run this before Envoy starts) and reports
// the destination each captured connection was originally aimed at.
//
// What is proven, and how:
//  - rules: iptables-save matches the generator exactly (rulesInPlace);
//  - egress capture: a connection to an outside address lands on the
//    outbound port with SO_ORIGINAL_DST = that address; DNS and the proxy uid
//    are not captured;
//  - portless routes: a connection to listenIp:<random port> lands on the
//    portless port with that original destination;
//  - ingress tproxy: a connection entering through a veth from a throwaway
//    namespace lands on the inbound port with the original destination IP and
//    port; a plaintext port is not captured; the proxy cannot dial its own
//    listener (loop guard);
//  - ingress mapped: a direct connection to an app port is dropped, a mapped
//    port is not;
//  - DNS capture: a query (UDP and TCP) from an app uid to an outside
//    resolver reaches the DNS address, and the UDP answer comes back from
//    the resolver's address; the proxy uid and dns.meshletUid bypass it.
// Checks that need the veth peer are skipped, with the reason, when the
// namespace cannot be created (no CAP_SYS_ADMIN, or no unshare/nsenter).
// Needs python3 (for IP_TRANSPARENT and SO_ORIGINAL_DST); without it only
// the rules are checked.
import type { MeshConfig } from '../config/model.js';
import type { IptablesDeps } from './deps.js';
import { parseConnect, parseDnsQuery, probeArgs, type ConnectResult, type ProbeAccept } from './probe-script.js';
import type { ProcessStarter, StartedProcess } from './process.js';
import { rulesInPlace } from './ready.js';
import { observeRouting } from './routing.js';
import { createPeer, PEER_NET, type Peer } from './verify-peer.js';
import { verifyChecks, type Probe } from './verify-checks.js';

export interface VerifyDeps extends IptablesDeps {
  processes: ProcessStarter;
  /** Python 3 interpreter for the probe (default "python3"). */
  python?: string;
}

export interface VerifyCheck {
  name: string;
  status: 'pass' | 'fail' | 'skip';
  detail: string;
}

export interface VerifyReport {
  /** No check failed. Skipped checks are listed with their reason. */
  ok: boolean;
  checks: VerifyCheck[];
}

const CONNECT_TIMEOUT_MS = 1500;
/** A dropped SYN shows as a timeout; this is how long we wait for one. */
const DROP_TIMEOUT_MS = 400;

export async function runVerify(config: MeshConfig, deps: VerifyDeps): Promise<VerifyReport> {
  const checks: VerifyCheck[] = [];
  const rules = await rulesInPlace(config, deps);
  checks.push({
    name: 'rules match the config',
    status: rules.ok ? 'pass' : 'fail',
    detail: rules.ok ? 'iptables-save and ip rule show what the generator produces' : rules.missing.join('; '),
  });
  // A system-wide interpreter, so the client run as the proxy uid can use it.
  const python = deps.python ?? ((await deps.runner.run('test', ['-x', '/usr/bin/python3'])).code === 0 ? '/usr/bin/python3' : 'python3');
  const py = await deps.runner.run(python, ['-c', 'import socket']);
  if (py.code !== 0) {
    checks.push({ name: 'live checks', status: 'skip', detail: `${python} is not available (${py.stderr.trim()}); only the rule presence was checked` });
    return report(checks);
  }
  const v6 = (await observeRouting(deps.runner, 6)) !== null;
  const ports = probePorts(config);
  const families = v6 ? ['--v4', '--v6'] : ['--v4'];
  let server: StartedProcess | undefined;
  let dnsServer: StartedProcess | undefined;
  let peer: Peer | string | undefined;
  try {
    if (ports.length > 0) {
      server = deps.processes.start(python, probeArgs('serve', [...ports, ...families]));
      const first = await server.waitFor((l) => l.includes('"event"'), 5000);
      if (first.includes('"error"')) throw new Error(`the probe cannot listen on a proxy port (${first}); run --verify before Envoy starts`);
    }
    if (config.dns) {
      dnsServer = deps.processes.start(python, probeArgs('dns-serve', [config.dns.address.ip, config.dns.address.port, ...(v6 ? ['--v6'] : [])]));
      const first = await dnsServer.waitFor((l) => l.includes('"event"'), 5000);
      if (first.includes('"error"')) throw new Error(`the probe cannot listen on the DNS address (${first}); run --verify before meshlet run starts`);
    }
    const needsPeer = config.ingress.mode !== 'disabled' || config.egress.capture || config.dns !== undefined;
    peer = needsPeer ? await createPeer(deps.runner, deps.processes, python, v6) : undefined;
    const probe = makeProbe(deps, python, server, typeof peer === 'object' ? peer : undefined);
    checks.push(...(await verifyChecks(config, probe, { v6, peerError: typeof peer === 'string' ? peer : undefined })));
  } catch (err) {
    checks.push({ name: 'live checks', status: 'fail', detail: (err as Error).message });
  } finally {
    if (typeof peer === 'object') await peer.remove();
    await server?.stop();
    await dnsServer?.stop();
  }
  return report(checks);
}

function report(checks: VerifyCheck[]): VerifyReport {
  return { ok: checks.every((c) => c.status !== 'fail'), checks };
}

function probePorts(c: MeshConfig): number[] {
  const ports: number[] = [];
  if (c.ingress.mode === 'tproxy') ports.push(c.proxy.inboundPort);
  if (c.egress.capture) ports.push(c.proxy.outboundPort);
  if (c.egress.routes.some((r) => r.listenPort === undefined)) ports.push(c.proxy.portlessEgressPort);
  return ports;
}

function makeProbe(deps: VerifyDeps, python: string, server: StartedProcess | undefined, peer: Peer | undefined): Probe {
  const connect = async (prefix: string[], host: string, port: number, timeoutMs: number): Promise<ConnectResult> => {
    const argv = [...prefix, python, ...probeArgs('connect', [host, port, timeoutMs])];
    const [cmd = python, ...args] = argv;
    const r = await deps.runner.run(cmd, args, { timeoutMs: timeoutMs + 5000 });
    return parseConnect(r.stdout, r.stderr);
  };
  return {
    peer: peer ? { v4: PEER_NET.podV4, v6: PEER_NET.podV6, remoteV4: PEER_NET.peerV4, remoteV6: PEER_NET.peerV6 } : undefined,
    fromPod: (host, port, asUid) =>
      connect(asUid === undefined ? [] : ['setpriv', `--reuid=${asUid}`, `--regid=${asUid}`, '--clear-groups'], host, port, CONNECT_TIMEOUT_MS),
    fromPeer: (host, port, expectDrop) => connect(peer ? peer.enter : [], host, port, expectDrop ? DROP_TIMEOUT_MS : CONNECT_TIMEOUT_MS),
    async dnsQuery(host, transport, asUid) {
      const argv = [
        'setpriv',
        `--reuid=${asUid}`,
        `--regid=${asUid}`,
        '--clear-groups',
        python,
        ...probeArgs('dns-query', [host, 53, transport, CONNECT_TIMEOUT_MS]),
      ];
      const [cmd = python, ...args] = argv;
      const r = await deps.runner.run(cmd, args, { timeoutMs: CONNECT_TIMEOUT_MS + 5000 });
      return parseDnsQuery(r.stdout, r.stderr);
    },
    async waitAccept(match, timeoutMs) {
      if (!server) return undefined;
      const hit = (l: string): boolean => l.includes('"accept"') && match(JSON.parse(l) as ProbeAccept);
      return server.waitFor(hit, timeoutMs).then(
        (l) => JSON.parse(l) as ProbeAccept,
        () => undefined,
      );
    },
  };
}
