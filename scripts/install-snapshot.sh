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
#     scripts/snapshot.mjs), without V8's code cache: the blob is then 4 MB
#     instead of 9, and node keeps it in memory while it runs.
#  2. Checks that `meshlet version` from the blob says what DIST/src/cli.js
#     says, with nothing on stderr.
#  3. With LAUNCHER: writes it, the `#!` line of DIST/src/cli.js (node's flags
#     and environment; src/cli.ts says why) with `--snapshot-blob
#     DIST/meshlet.blob` added. The kernel runs that line with LAUNCHER's own
#     path after it, and node, started from a snapshot, runs the snapshot's
#     entry instead of reading a script: LAUNCHER's path is only argv[1].
set -eu
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: sh scripts/install-snapshot.sh DIST [LAUNCHER]" >&2; exit 2; }
dist=$1
case $dist in /*) ;; *) echo "install-snapshot: DIST must be an absolute path, not $dist" >&2; exit 2 ;; esac
for f in "$dist/snapshot.cjs" "$dist/src/cli.js"; do
  [ -f "$f" ] || { echo "install-snapshot: $f is missing; run npm run build" >&2; exit 1; }
done

config=$(mktemp)
trap 'rm -f "$config" "$dist/meshlet.blob.tmp"' EXIT
printf '{"builder":"%s","withoutCodeCache":true}\n' "$dist/snapshot.cjs" > "$config"
node --snapshot-blob "$dist/meshlet.blob.tmp" --build-snapshot-config "$config"
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
out=$2
IFS= read -r first < "$dist/src/cli.js" || true
case $first in
  '#!/usr/bin/env -S '*' node '* | '#!/usr/bin/env -S node '*) ;;
  *) echo "install-snapshot: $dist/src/cli.js does not start with a '#!/usr/bin/env -S … node' line" >&2; exit 1 ;;
esac
line="$first --snapshot-blob $dist/meshlet.blob"
# The kernel reads 255 bytes of the #! line, newline included; a longer line would lose its end without an error.
[ ${#line} -le 254 ] || { echo "install-snapshot: the #! line would be ${#line} bytes; the kernel reads 254 and a newline" >&2; exit 1; }
{
  printf '%s\n' "$line"
  printf '%s\n' "# meshlet, started from its V8 startup snapshot (src/snapshot.ts); node never reads this file."
  printf '%s\n' "# Written by scripts/install-snapshot.sh; $dist/src/cli.js is the same CLI without the snapshot."
} > "$out.tmp"
chmod 0755 "$out.tmp"
mv -f "$out.tmp" "$out"
