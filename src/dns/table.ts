// Which query names meshlet answers itself, and with which address. Pure.
//
// The app's stub resolver expands a name with the search domains before it
// asks (resolv.conf(5) `search`, `ndots`), so the query that reaches us for
// `emoji-svc` is usually `emoji-svc.<ns>.svc.cluster.local`; and when the app
// asks for the fully qualified `emoji-svc.<ns>.svc.cluster.local`, ndots:5
// makes the client try `emoji-svc.<ns>.svc.cluster.local.<ns>.svc.cluster.local`
// first. For every configured name N the table therefore holds, in tiers:
//   1. N itself;
//   2. its other forms: N.S for every search domain S (the fully qualified
//      form of a short N), and N without .S when N ends in .S (the short form
//      of a fully qualified N);
//   3. every form of tiers 1 and 2 with a search domain appended: what a
//      client sends first for any of them.
// ndots only changes the order in which a client tries these names, never
// the set, so the table does not depend on it (docs/dns.md). Answering the
// tier-3 names at once saves the round trips to the upstream resolver, which
// would only say NXDOMAIN before the client gets to the name it meant.
//
// Precedence is deterministic: a lower tier wins, and within a tier the
// earlier route and the earlier search domain win. The config rules reject a
// name that two routes list.
import type { EgressRoute } from '../config/model.js';

export interface NameEntry {
  /** The route's name, for logs. */
  route: string;
  /** The route's listen address: an IPv4 address in 127.0.0.0/8. */
  ip: string;
}

export interface NameTable {
  lookup(qname: string): NameEntry | undefined;
  readonly size: number;
  /** Every answered name and its route, sorted; for logs and tests. */
  entries(): [string, string][];
}

/** Lowercase, no trailing dot: the form keys and queries are compared in. */
export function normalizeQueryName(name: string): string {
  return (name.endsWith('.') && !name.endsWith('\\.') ? name.slice(0, -1) : name).toLowerCase();
}

/** N.S for every search domain, and N without .S where N ends in it. */
function otherForms(name: string, search: readonly string[]): string[] {
  const out: string[] = [];
  for (const s of search) {
    out.push(`${name}.${s}`);
    if (name.endsWith(`.${s}`)) out.push(name.slice(0, -(s.length + 1)));
  }
  return out;
}

export function buildNameTable(routes: readonly EgressRoute[], search: readonly string[]): NameTable {
  const map = new Map<string, NameEntry>();
  const add = (name: string, entry: NameEntry): void => {
    if (!map.has(name)) map.set(name, entry);
  };
  const named = routes.flatMap((r) => (r.names ?? []).map((n) => ({ name: normalizeQueryName(n), entry: { route: r.name, ip: r.listenIp } })));
  const forms = named.map(({ name, entry }) => ({ entry, forms: [name, ...otherForms(name, search)] }));
  for (const { name, entry } of named) add(name, entry);
  for (const f of forms) for (const name of f.forms.slice(1)) add(name, f.entry);
  for (const f of forms) for (const name of f.forms) for (const s of search) add(`${name}.${s}`, f.entry);
  return {
    lookup: (qname) => map.get(normalizeQueryName(qname)),
    size: map.size,
    entries: () => [...map].map(([k, v]): [string, string] => [k, v.route]).sort((a, b) => a[0].localeCompare(b[0])),
  };
}
