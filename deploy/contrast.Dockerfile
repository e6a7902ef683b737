# meshlet in place of Contrast's service-mesh sidecar image: the meshlet image
# with root as its user and no command, so that the container Contrast injects
# (privileged, args `-l debug`, startupProbe `test -f /ready`) runs meshlet's
# Contrast mode unchanged. Contrast's injected container sets no user, and
# installing rules needs root; meshlet still runs Envoy as uid 1337 with only
# CAP_NET_ADMIN. See docs/migration-from-contrast.md, "Image replacement".
#
#   docker build -t meshlet .
#   docker build -f deploy/contrast.Dockerfile --build-arg MESHLET_IMAGE=meshlet -t meshlet:contrast .
ARG MESHLET_IMAGE=meshlet
FROM ${MESHLET_IMAGE}
USER 0:0
# The runtime directory, as root uses it: root's own, not writable by the
# proxy uid (the base image lends it to uid 1337, its default user).
RUN chown 0:0 /var/run/meshlet && chmod 0755 /var/run/meshlet
ENTRYPOINT ["/usr/local/bin/meshlet"]
CMD []
