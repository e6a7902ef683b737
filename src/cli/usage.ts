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
  sign        Sign a config file for pods that pin MESHLET_CONFIG_PUBKEY
              --key KEY.pem [--out FILE.sig] CONFIG | --key KEY.pem --print-pubkey
  version     Print meshlet's version
  contrast    In place of Contrast's service-mesh sidecar (also: no command, or
              only Envoy arguments such as -l debug): read CONTRAST_*, install
              the rules, run meshlet and Envoy (arguments passed to Envoy),
              remove the pod VM's default-deny rule and write /ready
              (MESHLET_READY_FILE) once ready

Common options:
  --config FILE   Config file (YAML). Without it, meshlet reads the YAML from
                  MESHLET_CONFIG if set, else Contrast's
                  CONTRAST_INGRESS_PROXY_CONFIG / CONTRAST_EGRESS_PROXY_CONFIG /
                  CONTRAST_ADMIN_PORT (or the older EDG_* names) if any is set,
                  else /etc/meshlet/config.yaml
  --config-sha256 HEX
                  Refuse a config file whose SHA-256 differs (same as
                  MESHLET_CONFIG_SHA256). With MESHLET_CONFIG_PUBKEY, updates
                  must be signed (meshlet sign) and raise "version:".
                  docs/threat-model.md
  --json          Machine-readable output
  --log-level L   trace|debug|info|warn|error (or MESHLET_LOG_LEVEL)
  -h, --help      This help

Exit codes: 0 ok, 1 invalid config or certificates, 2 usage error.
`;
