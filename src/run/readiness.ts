// /ready: 200 only when the iptables rules are in place, every connected Envoy
// has ACKed the current version of every type it subscribes to, and Envoy
// reports every listener of the snapshot active on the current LDS version,
// none of them stopped by an admin drain, and itself live. Envoy's admin is
// asked only after the ACKs.
import type { ReadyCheck, ReadyReport } from '../debug/server.js';
import type { AdminResponse } from '../envoy/admin.js';
import type { AdsStatus } from '../xds/events.js';
import { TYPE_URL } from '../xds/protos.js';
import { KeptAnswer, monotonicMs } from './kept-answer.js';

export interface ReadinessSources {
  /** Absent when the operator turned the iptables check off. */
  rules?: () => Promise<{ ok: boolean; missing: string[] }>;
  status: () => AdsStatus;
  /** The snapshot's listener names and LDS version. */
  listeners: () => { names: string[]; version: string };
  /** One GET to Envoy's admin (the Unix-socket client, bound to the socket). */
  admin: (urlPath: string) => Promise<AdminResponse>;
  /** Shares and keeps listener answers (ListenersCache); without it, every call asks Envoy's admin. */
  listenersCache?: ListenersCache;
  /** Set while meshlet shuts down: Envoy is draining, so new traffic should go elsewhere. */
  stopping?: () => boolean;
}

/**
 * The rules are installed once per pod, by `meshlet init` (the one container
 * with NET_ADMIN that runs before the app). A restarted sidecar whose config
 * needs other rules cannot fix that itself, and does not try: changing the
 * pod's firewall from the long-running container would widen what it can do.
 */
export const ROLL_THE_POD =
  'the rules are installed once per pod by meshlet init, so a sidecar restart cannot change them: roll the pod (kubectl rollout restart deployment/NAME) so ' +
  'that init runs with this config';

export function ackedCheck(status: AdsStatus): ReadyCheck {
  if (status.envoys.length === 0) return { ok: false, detail: 'no Envoy is connected to the xDS socket' };
  const lagging: string[] = [];
  for (const envoy of status.envoys) {
    for (const typeUrl of [TYPE_URL.cluster, TYPE_URL.listener, TYPE_URL.secret]) {
      const t = envoy.types[typeUrl];
      const short = typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
      // Secrets are requested by name once a listener or cluster needs them.
      if (!t) {
        if (typeUrl !== TYPE_URL.secret || (status.types[typeUrl]?.names.length ?? 0) === 0) continue;
        lagging.push(`${envoy.nodeId}: ${short} not requested yet`);
        continue;
      }
      if (!t.inSync)
        lagging.push(
          `${envoy.nodeId}: ${short} wants ${t.desiredVersion}, ACKed ${t.ackedVersion ?? 'nothing'}${t.lastError ? ` (NACK: ${t.lastError})` : ''}`,
        );
    }
    for (const typeUrl of [TYPE_URL.cluster, TYPE_URL.listener]) {
      if (!envoy.types[typeUrl]) lagging.push(`${envoy.nodeId}: ${typeUrl.slice(typeUrl.lastIndexOf('.') + 1)} not requested yet`);
    }
  }
  return lagging.length === 0 ? { ok: true, detail: 'every type ACKed at the current version' } : { ok: false, detail: lagging.join('; ') };
}

interface DynamicListener {
  name: string;
  active_state?: { version_info?: string };
  warming_state?: unknown;
  error_state?: { details?: string };
}

/** With ?resource=dynamic_listeners, `configs` lists DynamicListener entries directly. */
interface ListenerDump {
  configs?: DynamicListener[];
}

/** The stats readiness reads in one request: LDS version, stopped listeners, server state. */
const STATS = '/stats?format=json&filter=' + encodeURIComponent('^(listener_manager\\.lds\\.version_text|listener_manager\\.listener_stopped|server\\.state)$');

/**
 * Every listener of the snapshot is active with no warming update, and Envoy's
 * LDS version is the current one. (Per-listener version_info is not enough: an
 * in-place filter-chain update keeps the old value in config_dump.)
 *
 * An admin /drain_listeners closes listener sockets but leaves config_dump
 * and the active-listener gauge unchanged; the one trace is the
 * listener_manager.listener_stopped counter, and stopped listeners never come
 * back in that Envoy. So any stopped listener means not ready. server.state
 * is 0 only while Envoy is live (1 draining, 2 pre-initializing, 3 initializing).
 */
export async function listenersCheck(admin: ReadinessSources['admin'], expected: readonly string[], ldsVersion: string): Promise<ReadyCheck> {
  let dump: ListenerDump;
  let stats: Map<string, string | number | undefined>;
  try {
    const [d, v] = await Promise.all([
      // The mask keeps the dump small: at 1,000 listeners the full one is megabytes.
      admin('/config_dump?resource=dynamic_listeners&mask=name,active_state.version_info,warming_state,error_state'),
      admin(STATS),
    ]);
    if (d.status !== 200 || v.status !== 200) return { ok: false, detail: `Envoy admin answered ${d.status}/${v.status}` };
    dump = JSON.parse(d.body) as ListenerDump;
    stats = new Map(((JSON.parse(v.body) as { stats?: { name: string; value?: string | number }[] }).stats ?? []).map((s) => [s.name, s.value]));
  } catch (err) {
    return { ok: false, detail: `Envoy admin unreachable: ${(err as Error).message}` };
  }
  const listeners = new Map((dump.configs ?? []).map((l) => [l.name, l]));
  const versionText = stats.get('listener_manager.lds.version_text');
  const stopped = Number(stats.get('listener_manager.listener_stopped') ?? 0);
  const state = Number(stats.get('server.state') ?? 0);
  const bad: string[] = [];
  if (stopped > 0) bad.push(`Envoy stopped ${stopped} listener(s) (an admin drain); they stay closed until Envoy restarts`);
  if (state !== 0) bad.push(`Envoy is not live (server.state ${state})`);
  if (expected.length > 0 && versionText !== ldsVersion) bad.push(`Envoy's LDS version is ${String(versionText ?? 'none')}, not ${ldsVersion}`);
  for (const name of expected) {
    const l = listeners.get(name);
    if (!l?.active_state) bad.push(`${name} ${l?.warming_state ? 'warming' : l?.error_state ? `failed: ${l.error_state.details ?? ''}` : 'missing'}`);
    else if (l.warming_state) bad.push(`${name} has a warming update`);
  }
  return bad.length === 0 ? { ok: true, detail: `${expected.length} listeners active` } : { ok: false, detail: bad.join('; ') };
}

/** How long a positive listeners answer is reused, for the same Envoy streams and LDS version. */
export const LISTENERS_OK_TTL_MS = 1_000;

/**
 * The listeners check, shared: concurrent callers get one answer, and a
 * positive one is kept for LISTENERS_OK_TTL_MS, for the same Envoy streams and
 * the same LDS version only (a reload or a reconnect asks again). So an admin
 * drain shows on /ready within that time plus one check, and a probe polling
 * /ready does not put two admin requests on Envoy's main thread at every poll.
 * `meshlet run` also starts a check the moment every type is first ACKed
 * (Meshlet.warmReadiness), so the first /ready after that finds the answer
 * made or under way instead of starting it.
 */
export class ListenersCache {
  private readonly kept: KeptAnswer<string, ReadyCheck>;

  constructor(
    private readonly admin: ReadinessSources['admin'],
    now: () => number = monotonicMs,
  ) {
    this.kept = new KeptAnswer((r) => r.ok, LISTENERS_OK_TTL_MS, now);
  }

  get(status: AdsStatus, expected: readonly string[], ldsVersion: string): Promise<ReadyCheck> {
    const key = `${ldsVersion} ${status.envoys.map((e) => e.streamId).join(',')}`;
    return this.kept.get(key, () => listenersCheck(this.admin, expected, ldsVersion));
  }
}

/** The listeners check before every type is ACKed: not asked (see readiness()). */
export const LISTENERS_NOT_ASKED: ReadyCheck = {
  ok: false,
  detail: "not asked until Envoy has ACKed every type (Envoy's admin is left alone while it starts)",
};

/**
 * Envoy's admin is asked only once every type is ACKed: until then the answer
 * is not ready whatever the admin says, and a startup probe polling /ready
 * would put two admin requests on Envoy's main thread, the one applying its
 * first config, at every poll.
 */
export async function readiness(src: ReadinessSources): Promise<ReadyReport> {
  const status = src.status();
  const acked = ackedCheck(status);
  const { names, version } = src.listeners();
  const [rules, listeners] = await Promise.all([
    src.rules ? src.rules() : Promise.resolve({ ok: true, missing: [] as string[] }),
    !acked.ok ? LISTENERS_NOT_ASKED : src.listenersCache ? src.listenersCache.get(status, names, version) : listenersCheck(src.admin, names, version),
  ]);
  const checks: Record<string, ReadyCheck> = {
    ...(src.stopping?.() ? { stopping: { ok: false, detail: 'meshlet is shutting down; Envoy drains its listeners' } } : {}),
    iptables: src.rules
      ? { ok: rules.ok, detail: rules.ok ? 'meshlet rules in place' : `${rules.missing.join('; ')}; ${ROLL_THE_POD}` }
      : { ok: true, detail: 'not checked (--skip-iptables-check)' },
    xdsAcked: acked,
    envoyListeners: listeners,
  };
  return { ready: Object.values(checks).every((c) => c.ok), checks };
}
