#!/bin/sh
# Makes meshlet's V8 startup snapshot for the node on PATH, and optionally the
# `meshlet` command that starts from it:
#
#   sh scripts/install-snapshot.sh DIST [LAUNCHER]
#
# DIST is the absolute path of the built dist/ (`npm run build` calls this
# through scripts/snapshot.mjs; the image build calls it again with the
# image's node, Dockerfile). A blob only runs on the node that built it.
#  1. DIST/meshlet.blob from DIST/snapshot.cjs (src/snapshot.ts, bundled by
#     scripts/snapshot.mjs). The build rehearses a start on a sample config
#     and a throwaway PKI made here (src/snapshot-rehearsal.ts), and keeps
#     V8's code, so the blob holds the bytecode of what a start runs; then
#     node's code cache for its built-ins, which it appends to such a blob,
#     is cut off (src/snapshot-blob.ts): node keeps the blob in memory, and
#     that cache would be 4 MB of it, of no use under meshlet's V8 flags.
#     The build fails if the blob holds a PEM block (the rehearsal's PKI).
#  2. Checks that `meshlet version` from the blob says what DIST/src/cli.js
#     says, with nothing on stderr.
#  3. With LAUNCHER: writes it, a sh script (src/envoy/early.ts) that starts
#     node as the `#!` line of DIST/src/cli.js does (node's flags and
#     environment; src/cli.ts says why) with `--snapshot-blob
#     DIST/meshlet.blob` added, and LAUNCHER's own path after it: node,
#     started from a snapshot, runs the snapshot's entry instead of reading a
#     script, so that path is only argv[1]. For `meshlet run` it starts Envoy
#     first (src/envoy/early.ts says how and why).
set -eu
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: sh scripts/install-snapshot.sh DIST [LAUNCHER]" >&2; exit 2; }
dist=$1
case $dist in /*) ;; *) echo "install-snapshot: DIST must be an absolute path, not $dist" >&2; exit 2 ;; esac
for f in "$dist/snapshot.cjs" "$dist/src/cli.js"; do
  [ -f "$f" ] || { echo "install-snapshot: $f is missing; run npm run build" >&2; exit 1; }
done

config=$(mktemp)
rehearsal=$(mktemp -d)
trap 'rm -rf "$config" "$rehearsal" "$dist/meshlet.blob.tmp"' EXIT
node "$dist/src/cli.js" dev-pki --out "$rehearsal/certs" --san rehearsal >/dev/null
printf '{"builder":"%s","withoutCodeCache":false}\n' "$dist/snapshot.cjs" > "$config"
MESHLET_SNAPSHOT_REHEARSAL=$rehearsal node --snapshot-blob "$dist/meshlet.blob.tmp" --build-snapshot-config "$config"
node --input-type=module -e '
const [dist, file] = process.argv.slice(1);
const { readFileSync, writeFileSync } = await import("node:fs");
const { pemBlockIn, stripBuiltinCodeCache } = await import(`${dist}/src/snapshot-blob.js`);
const { blob } = stripBuiltinCodeCache(readFileSync(file));
const pem = pemBlockIn(blob);
if (pem) throw new Error(`the snapshot holds a PEM block (${pem}): its build kept some of the certificate files of the rehearsal`);
writeFileSync(file, blob);
' "$dist" "$dist/meshlet.blob.tmp"
mv -f "$dist/meshlet.blob.tmp" "$dist/meshlet.blob"

want=$(node "$dist/src/cli.js" version)
err=$(mktemp)
got=$(node --snapshot-blob "$dist/meshlet.blob" "$dist/src/cli.js" version 2>"$err") || true
problem=$(cat "$err"; rm -f "$err")
if [ "$got" != "$want" ] || [ -n "$problem" ]; then
  echo "install-snapshot: meshlet version from $dist/meshlet.blob said \"$got\" (want \"$want\") ${problem:+and on stderr: $problem}" >&2
  exit 1
fi

[ $# -eq 2 ] || exit 0
# The launcher is a sh script (src/envoy/early.ts writes it): for `meshlet run` it starts Envoy before node, on a
# bootstrap node sends through a pipe once it has read the config; then it execs node with the #! line's
# environment and flags of DIST/src/cli.js and --snapshot-blob DIST/meshlet.blob, with its own path as argv[1].
node --input-type=module -e '
const [dist, out] = process.argv.slice(1);
const { writeLauncher } = await import(`${dist}/src/envoy/early.js`);
const { flagsOf } = await import(`${dist}/src/cli/usage.js`);
const { DEFAULTS } = await import(`${dist}/src/config/constants.js`);
writeLauncher(out, dist, { runFlags: flagsOf("run"), proxyUid: DEFAULTS.proxy.uid, proxyGid: DEFAULTS.proxy.gid });
' "$dist" "$2"
