#!/usr/bin/env bash
# Checks the shipped example config against a throwaway PKI: the quick way to
# see what meshlet would configure, without root or a pod.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
node dist/src/cli.js dev-pki --out "$dir/certs" --san web >/dev/null
sed "s#/contrast/tls-config#$dir/certs#" config/example.yaml > "$dir/example.yaml"
node dist/src/cli.js check --config "$dir/example.yaml"
