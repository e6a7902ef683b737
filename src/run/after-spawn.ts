// What `meshlet run` needs only once the first snapshot is served: its own
// servers, the file watchers (with the reload path) and the views. service.ts
// imports this module after it has spawned Envoy and installed the snapshot
// (snapshot-for.ts, loaded first), so that loading it overlaps Envoy's own
// start instead of delaying it; nothing before the spawn may import these.
export { startDebugServer } from '../debug/server.js';
export { startPublicServer } from '../debug/public.js';
export { probeCounter, probeHost, startProbeServer } from '../debug/probes.js';
export { mappedPorts } from '../xds/builders/listeners-inbound.js';
export { ReloadLog, watchSources } from './watch.js';
export { currentTrust, dnsCounters, envoyConfigDump, refusedCounters, xdsView } from './views.js';
