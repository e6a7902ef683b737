// Rules as data. A family's rules are a list of tables; each table holds our
// own chains (with their full `-A` lines) and the jumps from built-in chains
// into them. The same shape describes what we want and what iptables-save
// shows, so planning, cleanup and the readiness check are set comparisons.

export type Family = 4 | 6;
export type TableName = 'raw' | 'mangle' | 'nat' | 'filter';

/**
 * Tables in the order we write them: raw first (conntrack zones must exist
 * before nat sees a flow), filter last so drops follow diversions.
 */
export const TABLE_ORDER: readonly TableName[] = ['raw', 'mangle', 'nat', 'filter'];

export interface ChainSpec {
  name: string;
  /** Complete `-A NAME ...` lines, in iptables-save's canonical spelling. */
  rules: string[];
}

export interface TableSpec {
  table: TableName;
  chains: ChainSpec[];
  /** `-A <BUILTIN> ... -j MESHLET_...` lines. */
  jumps: string[];
}

/** Policy routing for TPROXY: fwmark rule -> table with a local default route. */
export interface RoutingSpec {
  family: Family;
  mark: string;
  table: number;
  priority: number;
  /** IPv6 only: an address to put on lo (the proxy's upstream source ::6). */
  loopbackAddress?: string;
}

export interface FamilyRules {
  family: Family;
  tables: TableSpec[];
  routing?: RoutingSpec;
}

export interface GeneratedRules {
  v4: FamilyRules;
  v6: FamilyRules;
}
