// Inbound rules. tproxy mode (RFC Routing 2): mangle PREROUTING TPROXYs new
// inbound TCP to the proxy, keeping the original destination. mapped mode
// (RFC Routing 1): filter INPUT drops direct connections to the app ports.
// Kernel reference: https://docs.kernel.org/networking/tproxy.html
import type { MeshConfig } from '../config/model.js';
import { CHAINS, MARK_HEX, MARK_MASK } from './constants.js';
import { dportMatch, portGroups } from './multiport.js';
import type { Family, TableSpec } from './types.js';

const { inbound: IN, divert: DIVERT, input: INPUT } = CHAINS;

/** The mangle table for tproxy mode, or nothing if no port is proxied. */
export function tproxyTable(c: MeshConfig, family: Family): TableSpec | undefined {
  const proxied = c.ingress.ports.filter((p) => p.policy !== 'plaintext').map((p) => p.port);
  const plaintext = c.ingress.ports.filter((p) => p.policy === 'plaintext').map((p) => p.port);
  const catchAll = c.ingress.default !== 'plaintext';
  if (!catchAll && proxied.length === 0) return undefined;

  const onIp = family === 4 ? '0.0.0.0' : '::';
  const tproxy = `-j TPROXY --on-port ${c.proxy.inboundPort} --on-ip ${onIp} --tproxy-mark ${MARK_HEX}/${MARK_MASK}`;
  const rules = [
    // Loopback carries the proxy's own hop to the app (from 127.0.0.6 / ::6).
    `-A ${IN} -i lo -j RETURN`,
    // Only traffic addressed to the pod: a peer that routes foreign
    // destinations through the pod must not have its TLS terminated here.
    `-A ${IN} -m addrtype ! --dst-type LOCAL -j RETURN`,
    // Packets of existing flows, replies to connections the proxy or the app
    // opened included, must not reach TPROXY: it would find their socket
    // non-transparent and drop them, so they are marked and accepted first.
    `-A ${IN} -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ${DIVERT}`,
  ];
  if (catchAll) {
    for (const g of portGroups(plaintext)) rules.push(`-A ${IN} -p tcp ${dportMatch(g)} -j RETURN`);
    // The proxy's own ports are deliberately not exempt: a connection aimed at
    // them reaches the inbound listener, whose blackhole chain closes it.
    rules.push(`-A ${IN} -p tcp ${tproxy}`);
  } else {
    for (const g of portGroups(proxied)) rules.push(`-A ${IN} -p tcp ${dportMatch(g)} ${tproxy}`);
  }
  return {
    table: 'mangle',
    chains: [
      { name: DIVERT, rules: [`-A ${DIVERT} -j MARK --set-xmark ${MARK_HEX}/${MARK_MASK}`, `-A ${DIVERT} -j ACCEPT`] },
      { name: IN, rules },
    ],
    jumps: [`-A PREROUTING -p tcp -j ${IN}`],
  };
}

/**
 * Rules for the filter table in mapped mode. Envoy listens only on the mapped
 * ports, so it cannot apply a policy to a port it was not told about: with
 * `ingress.default` mtls or tls, every new inbound connection is dropped
 * except to the mapped ports and the listed plaintext ports (nothing reaches
 * the app unencrypted that the config does not name). With default
 * plaintext, only the listed app ports are closed.
 */
export function mappedInputRules(c: MeshConfig): { chain: string; rules: string[]; jump: string } | undefined {
  const appPorts = c.ingress.ports.filter((p) => p.policy !== 'plaintext').map((p) => p.port);
  const closeRest = c.ingress.default !== 'plaintext';
  if (appPorts.length === 0 && !closeRest) return undefined;
  const rules = [`-A ${INPUT} -i lo -j RETURN`];
  // Only new connections: a reply to an outbound connection whose ephemeral
  // local port happens to equal an app port is ESTABLISHED and passes.
  const isNew = '-m conntrack ! --ctstate RELATED,ESTABLISHED';
  if (closeRest) {
    const open = [
      ...c.ingress.ports.filter((p) => p.policy === 'plaintext').map((p) => p.port),
      ...c.ingress.ports.flatMap((p) => (p.mappedPort === undefined ? [] : [p.mappedPort])),
    ];
    for (const g of portGroups(open)) rules.push(`-A ${INPUT} -p tcp ${dportMatch(g)} -j RETURN`);
    rules.push(`-A ${INPUT} -p tcp ${isNew} -j DROP`);
  } else {
    for (const g of portGroups(appPorts)) rules.push(`-A ${INPUT} -p tcp ${dportMatch(g)} ${isNew} -j DROP`);
  }
  return { chain: INPUT, rules, jump: `-A INPUT -p tcp -j ${INPUT}` };
}
