// Reading meshlet's debug endpoint: the served versions per type and the
// change-to-ACK histogram.
import { getJson, getText } from './http.js';
import type { Versions } from './meshlet.js';

export async function servedVersions(debugUrl: string): Promise<Versions> {
  const body = await getJson<{ types: Record<string, { version: string }> }>(`${debugUrl}/xds`);
  return Object.fromEntries(Object.entries(body.types).map(([t, v]) => [t, v.version]));
}

export interface Histogram {
  count: number;
  sum: number;
}

export async function changeToAck(debugUrl: string): Promise<Histogram> {
  const { body } = await getText(`${debugUrl}/metrics`);
  const read = (suffix: string): number => Number(new RegExp(`^meshlet_change_to_ack_seconds_${suffix} (\\S+)$`, 'm').exec(body)?.[1] ?? NaN);
  return { count: read('count'), sum: read('sum') };
}
