// Every listener for a config, in a fixed order.
import type { MeshConfig } from '../../config/model.js';
import type { JsonObject } from '../protos.js';
import { outboundListener, portlessListener, routeListeners } from './listeners-egress.js';
import { inboundTproxyListener, mappedListeners, type ChainGenerations } from './listeners-inbound.js';
import type { SecretSource } from './tls.js';
import { withAccessLog } from './access-log.js';

export function buildListeners(c: MeshConfig, source: SecretSource = 'ads', generations?: ChainGenerations): JsonObject[] {
  const out: JsonObject[] = [];
  if (c.ingress.mode === 'tproxy') out.push(inboundTproxyListener(c, source, generations));
  if (c.ingress.mode === 'mapped') out.push(...mappedListeners(c, source));
  out.push(...routeListeners(c));
  const portless = portlessListener(c);
  if (portless) out.push(portless);
  if (c.egress.capture) out.push(outboundListener(c));
  return c.accessLog ? out.map(withAccessLog) : out;
}
