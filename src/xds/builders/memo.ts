// Builder results reused across rebuilds. A reload rebuilds every resource
// from the config, and at 1,000 routes almost all come out the same. A memo
// maps items to resources, hands back last call's frozen object for a key
// that recurs (the key holds everything the result depends on), and keeps
// only this call's keys. The snapshot then knows a reused object by identity
// and skips serialising it to find out it is unchanged (src/xds/snapshot.ts).
import type { Json, JsonObject } from '../protos.js';

/** Every memo, so that the startup snapshot's build can forget what its rehearsal built (forgetAllMemos). */
const memos: BuildMemo[] = [];

export class BuildMemo {
  private last = new Map<string, JsonObject>();

  constructor() {
    memos.push(this);
  }

  /** The keys the next call may reuse (for tests and the rehearsal). */
  get size(): number {
    return this.last.size;
  }

  map<I>(items: readonly I[], key: (item: I) => string, make: (item: I) => JsonObject): JsonObject[] {
    const next = new Map<string, JsonObject>();
    const out = items.map((item) => {
      const k = key(item);
      const value = next.get(k) ?? this.last.get(k) ?? deepFreeze(make(item));
      next.set(k, value);
      return value;
    });
    this.last = next;
    return out;
  }

  forget(): void {
    this.last = new Map();
  }
}

/** Empties every memo: the next build makes every resource afresh. */
export function forgetAllMemos(): void {
  for (const m of memos) m.forget();
}

/** How many keys the memos hold in all (0 once forgotten). */
export function memoSizes(): number {
  return memos.reduce((n, m) => n + m.size, 0);
}

/** Frozen all the way down: a reused result is shared by every build that reuses it, so nobody may change it. */
export function deepFreeze<T extends Json>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
