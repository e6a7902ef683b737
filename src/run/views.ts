// What meshlet shows about itself: the /xds view, Envoy's config dump, and
// the counters of the DNS server and of refused config updates. All redacted
// or counts only: nothing here may carry a private key.
import type { LoadedConfig } from '../config/load.js';
import type { ConfigGate } from '../config/trust.js';
import type { MeshConfig } from '../config/model.js';
import { exemptions } from '../config/exemptions.js';
import { redact } from '../debug/redact.js';
import { renderCounters } from '../debug/metrics.js';
import type { DnsService } from '../dns/index.js';
import type { AdminResponse } from '../envoy/admin.js';
import type { Snapshot } from '../xds/snapshot.js';
import type { EnvoyStatus } from '../xds/events.js';
import type { ReloadRecord } from './watch.js';

export interface XdsViewSources {
  loaded: LoadedConfig;
  config: MeshConfig;
  snapshot: Snapshot;
  envoys: EnvoyStatus[];
  reloads: readonly ReloadRecord[];
}

/** The trust of the config serving now: the gate's, when the config is pinned. */
export const currentTrust = (loaded: LoadedConfig): LoadedConfig['trust'] => loaded.gate?.trust() ?? loaded.trust;

export function xdsView(s: XdsViewSources): unknown {
  const types = Object.fromEntries(
    Object.values(s.snapshot.types).map((t) => [t.typeUrl, { version: t.version, resources: [...t.resources.values()].map((r) => r.json) }]),
  );
  return redact({ source: s.loaded.source, trust: currentTrust(s.loaded), exemptions: exemptions(s.config), types, envoys: s.envoys, reloads: s.reloads });
}

export async function envoyConfigDump(admin: (path: string, opts: { timeoutMs: number }) => Promise<AdminResponse>): Promise<unknown> {
  const res = await admin('/config_dump', { timeoutMs: 2_000 });
  if (res.status !== 200) throw new Error(`Envoy admin /config_dump: HTTP ${res.status}`);
  return redact(JSON.parse(res.body));
}

export function dnsCounters(dns: DnsService): () => string {
  return () => {
    const s = dns.stats;
    const outcomes = { answered: s.answered, forwarded: s.forwarded, errors: s.errors, dropped: s.dropped, loops: s.loops };
    return renderCounters(
      'meshlet_dns_queries_total',
      'DNS queries by outcome: answered (route names), forwarded, errors, dropped, loops',
      'outcome',
      outcomes,
    );
  };
}

export function refusedCounters(gate: ConfigGate): () => string {
  return () =>
    renderCounters(
      'meshlet_config_updates_refused_total',
      "Config file updates refused because the pod's policy does not cover them, by reason",
      'reason',
      Object.fromEntries(gate.refused),
    );
}
