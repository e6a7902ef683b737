// The pod's own resolver settings, from resolv.conf(5): where queries that
// meshlet does not answer go (nameserver), and which names a short name
// expands to (search, ndots). Pure: the caller reads the file.
const { isIP } = process.getBuiltinModule('node:net');

export interface Upstream {
  ip: string;
  port: number;
}

export interface ResolvConf {
  nameservers: Upstream[];
  /** Lowercase, without trailing dots, in the order the client tries them. */
  search: string[];
  ndots: number;
}

/** glibc's limits (resolv.h): MAXNS nameservers, ndots capped at RES_MAXNDOTS. */
export const MAX_NAMESERVERS = 3;
export const MAX_NDOTS = 15;
const MAX_SEARCH = 32;

/**
 * Parses resolv.conf the way glibc does: later `search`/`domain` lines replace
 * earlier ones, only the first three nameservers count, unknown lines and
 * options are ignored. Without any nameserver line, glibc asks the local
 * machine (127.0.0.1 and ::1), and so do we.
 */
export function parseResolvConf(text: string): ResolvConf {
  const nameservers: Upstream[] = [];
  let search: string[] = [];
  let ndots = 1;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, ...args] = line.split(/\s+/);
    if (key === 'nameserver' && args[0] !== undefined) {
      const ip = args[0].split('%')[0] ?? '';
      if (isIP(ip) !== 0 && nameservers.length < MAX_NAMESERVERS) nameservers.push({ ip: args[0], port: 53 });
    } else if (key === 'search' || key === 'domain') {
      search = args
        .map(normalizeDomain)
        .filter((d): d is string => d !== undefined)
        .slice(0, key === 'domain' ? 1 : MAX_SEARCH);
    } else if (key === 'options') {
      for (const opt of args) {
        const m = /^ndots:(\d+)$/.exec(opt);
        if (m) ndots = Math.min(Number(m[1]), MAX_NDOTS);
      }
    }
  }
  if (nameservers.length === 0) nameservers.push({ ip: '127.0.0.1', port: 53 }, { ip: '::1', port: 53 });
  return { nameservers, search: [...new Set(search)], ndots };
}

function normalizeDomain(d: string): string | undefined {
  const bare = d.replace(/\.+$/, '').toLowerCase();
  return bare === '' ? undefined : bare;
}
