// Usage errors exit 2; everything a command reports as invalid exits 1.
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const HELP = `meshlet - a per-pod service-mesh sidecar for Envoy

Usage: meshlet <command> [options]

Commands:
  check       Validate the config and certificates, then print what would be configured
              [--skip-certs]
  init        Install the iptables/ip6tables rules (needs NET_ADMIN)
              [--dry-run] [--verify] [--backend auto|nft|legacy]
  cleanup     Remove everything init added [--dry-run] [--backend ...]
  run         Serve xDS, write Envoy's bootstrap, start and supervise Envoy
              [--envoy PATH] [--no-envoy] [--sotw] [--skip-iptables-check]
              [--debug-envoy-config-dump] [--node-id ID] [--drain-seconds N]
  bootstrap   Write Envoy's bootstrap [--out FILE] [--static] [--sotw]
  wait-ready  Block until /ready answers 200 [--timeout S] (exec startupProbe)
  dump        Show the xDS snapshot, ACK/NACK state and readiness [--json]
  dev-pki     Write a throwaway mesh CA and workload certificate for local tries
              --out DIR [--san NAME ...]
  version     Print meshlet's version
  contrast    In place of Contrast's service-mesh sidecar (also: no command, or
              only Envoy arguments such as -l debug): read CONTRAST_*, install
              the rules, run meshlet and Envoy (arguments passed to Envoy),
              remove the pod VM's default-deny rule and write /ready
              (MESHLET_READY_FILE) once ready

Common options:
  --config FILE   Config file (YAML). Without it, meshlet reads Contrast's
                  CONTRAST_INGRESS_PROXY_CONFIG / CONTRAST_EGRESS_PROXY_CONFIG /
                  CONTRAST_ADMIN_PORT (or the older EDG_* names) if any is set,
                  else /etc/meshlet/config.yaml
  --json          Machine-readable output
  --log-level L   trace|debug|info|warn|error (or MESHLET_LOG_LEVEL)
  -h, --help      This help

Exit codes: 0 ok, 1 invalid config or certificates, 2 usage error.
`;
