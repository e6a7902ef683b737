# meshlet sidecar image: meshlet (Node.js) next to the official Envoy, with the
# tools `meshlet init` needs (iptables, ip6tables, iproute2) and setpriv.
#
#   docker build -t meshlet .
#   docker run --rm meshlet check --skip-certs --config /opt/meshlet/config/example.yaml
#
# Base images come in through build args, to be pinned by version AND digest
# (name:tag@sha256:...), so that a moved tag cannot change a rebuild. The
# digests are not filled in yet: no image registry was reachable where this
# file was written. deploy/pin-base-images.sh resolves them and rewrites the
# two lines below; run it where a registry is reachable and commit the result.
# deploy/image-check.sh builds this file with locally made bases by
# overriding only these two args.
ARG NODE_IMAGE=node:26-bookworm-slim
ARG ENVOY_IMAGE=envoyproxy/envoy:v1.40.0

# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS node

# ---- build: every dependency (TypeScript is a devDependency), then compile.
FROM node AS build
WORKDIR /build
COPY package.json package-lock.json ./
# --ignore-scripts: the `prepare` script runs tsc, and the sources are not in
# yet (copying them later keeps this layer cached across source edits).
# `npm run build` below is that same tsc run, then the bundle of the CLI
# (scripts/bundle.mjs; esbuild finds its binary without install scripts) and
# the startup snapshot's entry (scripts/snapshot.mjs), whose blob the runtime
# stage makes again with its own node.
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
COPY . .
RUN npm run build && node dist/src/cli.js version

# ---- prod-deps: production dependencies only, no install scripts.
FROM node AS prod-deps
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error

# ---- runtime: the Envoy image, plus Node, meshlet and the network tools.
FROM ${ENVOY_IMAGE} AS runtime
USER 0:0
ARG DEBIAN_FRONTEND=noninteractive
# Users and capabilities. Envoy always runs as uid 1337 (proxy.uid, whose
# traffic the iptables rules never capture) with CAP_NET_ADMIN alone, which
# its transparent (TPROXY) listeners need. Two ways to get there:
#  - non-root, the image default: meshlet runs as 1337 too, with no
#    capability, and starts Envoy directly. Kubernetes cannot hand a non-root
#    process a capability (no ambient capabilities), so the Envoy binary
#    carries cap_net_admin+ep as a file capability. The kernel applies it only
#    with NET_ADMIN in the container's bounding set (capabilities.add:
#    [NET_ADMIN]) and without no_new_privs (allowPrivilegeEscalation: true);
#    without NET_ADMIN in the bounding set it refuses to exec Envoy at all
#    ("operation not permitted"), so the sidecar must always add NET_ADMIN.
#  - root supervisor (runAsUser: 0), when the certificates are readable by
#    root alone, as Contrast's Initializer writes them: meshlet starts Envoy
#    through setpriv as uid 1337 with only CAP_NET_ADMIN (ambient), and
#    no_new_privs can be on. The container then adds CHOWN, KILL, NET_ADMIN,
#    SETGID, SETPCAP and SETUID. deploy/kubernetes/deployment.yaml uses this.
# `meshlet init` runs from this image as root with only NET_ADMIN (plus
# NET_RAW where the pod's rules are iptables-legacy).
# deploy/image-check.sh runs both sidecar shapes and init.
# The plain `iptables`/`iptables-save` names point at the legacy backend, as
# in Contrast's sidecar image: Contrast's pod VM keeps a legacy filter table,
# and the nft variant of iptables-save then warns on stderr, which Contrast's
# own check of the sidecar (`sh -ec "iptables-save; iptables-legacy-save"`
# with empty stderr) refuses. meshlet itself always names the backend it uses.
# libatomic1: Node's release binary, copied in from the node image (which
# installs the package for it), links libatomic.so.1.
# Envoy cannot be run in this build after setcap (the builder has no
# NET_ADMIN), so its version check comes first.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends iptables iproute2 util-linux libcap2-bin libstdc++6 libatomic1 ca-certificates >/dev/null \
 && envoy --version \
 && update-alternatives --quiet --set iptables /usr/sbin/iptables-legacy \
 && update-alternatives --quiet --set ip6tables /usr/sbin/ip6tables-legacy \
 && setcap cap_net_admin+ep /usr/local/bin/envoy \
 && getcap /usr/local/bin/envoy | grep -q cap_net_admin \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && (getent group 1337 >/dev/null || groupadd --system --gid 1337 meshlet) \
 && (getent passwd 1337 >/dev/null || useradd --system --uid 1337 --gid 1337 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin meshlet) \
 && install -d -o 1337 -g 1337 -m 0700 /var/run/meshlet \
 && install -d -m 0755 /etc/meshlet /opt/meshlet
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=prod-deps /build/node_modules /opt/meshlet/node_modules
COPY --from=build /build/package.json /opt/meshlet/package.json
COPY --from=build /build/dist/src /opt/meshlet/dist/src
COPY --from=build /build/dist/snapshot.cjs /opt/meshlet/dist/snapshot.cjs
COPY --from=build /build/scripts/install-snapshot.sh /opt/meshlet/install-snapshot.sh
COPY --from=build /build/config /opt/meshlet/config
# `meshlet` starts node from meshlet's V8 startup snapshot (src/snapshot.ts):
# the CLI and what `meshlet run` loads before it spawns Envoy are already in
# the heap, so Envoy starts sooner and meshlet keeps less at idle. A snapshot
# only runs on the node that made it, so it is made here, with this image's
# node, and /usr/local/bin/meshlet is the launcher that starts from it
# (scripts/install-snapshot.sh; it checks the snapshot answers as
# dist/src/cli.js does; the build rehearses a start on a sample config and a
# throwaway PKI it makes and removes, so the snapshot holds that code
# compiled, src/snapshot-rehearsal.ts): a sh script that, for `meshlet run`, starts Envoy
# before node, on a bootstrap node writes into a FIFO in /dev/shm
# (src/envoy/early.ts). `meshlet version` must write nothing to stderr: V8
# reports a flag of src/cli.ts's V8_FLAGS that this node does not know only
# there.
RUN chmod 0755 /opt/meshlet/dist/src/cli.js \
 && node --version \
 && sh /opt/meshlet/install-snapshot.sh /opt/meshlet/dist /usr/local/bin/meshlet \
 && rm /opt/meshlet/install-snapshot.sh \
 && meshlet version \
 && test -z "$(meshlet version 2>&1 >/dev/null)" \
 && test -z "$(setpriv --reuid=1337 --regid=1337 --clear-groups meshlet version 2>&1 >/dev/null)"
ENV NODE_ENV=production \
    MESHLET_ENVOY=/usr/local/bin/envoy
LABEL org.opencontainers.image.title="meshlet" \
      org.opencontainers.image.description="Per-pod service-mesh sidecar: Envoy xDS control plane and iptables startup" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /
USER 1337:1337
ENTRYPOINT ["/usr/local/bin/meshlet"]
CMD ["run"]
