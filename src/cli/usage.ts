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
  check      Validate the config and certificates, then print what would be configured
  version    Print meshlet's version

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
