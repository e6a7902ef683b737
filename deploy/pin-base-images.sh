#!/usr/bin/env bash
# Pins the Dockerfile's base images by digest: for each `ARG NODE_IMAGE=` and
# `ARG ENVOY_IMAGE=` default, resolves the digest of its tag (the multi-arch
# index, so every platform stays pinned) and rewrites the line as
# name:tag@sha256:<digest>. Run it where an image registry is reachable,
# review the diff, commit it. An already pinned line is re-resolved; a tag that
# moved shows up as a changed digest.
#
#   bash deploy/pin-base-images.sh          # rewrite the Dockerfile
#   bash deploy/pin-base-images.sh --check  # exit 1 if a default is not pinned
#
# Needs one of: skopeo, crane, or docker with buildx.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKERFILE=Dockerfile
ARGS=(NODE_IMAGE ENVOY_IMAGE)

current() { sed -n "s/^ARG $1=//p" "$DOCKERFILE"; }

if [ "${1:-}" = "--check" ]; then
  status=0
  for a in "${ARGS[@]}"; do
    v=$(current "$a")
    if [[ "$v" =~ ^[^@]+:[^@]+@sha256:[0-9a-f]{64}$ ]]; then echo "pinned:   $a=$v"; else echo "UNPINNED: $a=$v"; status=1; fi
  done
  exit "$status"
fi

digest() {
  local ref=$1
  if command -v skopeo >/dev/null; then
    # The digest of the manifest as served (the index for a multi-arch tag).
    skopeo inspect --raw "docker://$ref" | sha256sum | awk '{print "sha256:" $1}'
  elif command -v crane >/dev/null; then
    crane digest "$ref"
  elif docker buildx version >/dev/null 2>&1; then
    docker buildx imagetools inspect "$ref" --format '{{.Manifest.Digest}}'
  else
    echo "need skopeo, crane or docker buildx to resolve $ref" >&2
    return 1
  fi
}

for a in "${ARGS[@]}"; do
  v=$(current "$a")
  [ -n "$v" ] || { echo "no ARG $a= line in $DOCKERFILE" >&2; exit 1; }
  tag=${v%%@*}
  d=$(digest "$tag")
  [[ "$d" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "bad digest for $tag: $d" >&2; exit 1; }
  sed -i "s|^ARG $a=.*|ARG $a=$tag@$d|" "$DOCKERFILE"
  echo "$a=$tag@$d"
done
