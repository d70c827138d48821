#!/usr/bin/env bash
# Builds the edge image from the repository's Dockerfile with podman, on the local base image of
# .ci/container-base.sh (no registry image can be pulled here). Prints the image name on its last line.
#
#   .ci/container-image.sh [IMAGE]      default IMAGE: $BRATS_EDGE_IMAGE or localhost/brats-edge:ci
#
# podman keeps the build's layers, so a second build of an unchanged tree takes seconds. Settings (environment):
# CONTAINERS_CONF (written to a temporary file when unset, see below), BRATS_BASE_IMAGE, BRATS_BUILD_CA_FILE (the
# CA bundle the build stage trusts; default: this machine's, /etc/ssl/certs/ca-certificates.crt).
set -euo pipefail
cd "$(dirname "$0")/.."

image="${1:-${BRATS_EDGE_IMAGE:-localhost/brats-edge:ci}}"
log() { echo "container-image: $*" >&2; }

for tool in podman runc; do
  command -v "$tool" >/dev/null 2>&1 || { log "$tool is not installed (apt-get install podman buildah runc debootstrap)"; exit 3; }
done

# podman's defaults do not fit this kind of machine: crun (when installed) refuses its mix of cgroup v1 and v2,
# and the default ulimits (nofile 1048576) exceed the host's hard limits, so every RUN step would fail.
if [ -z "${CONTAINERS_CONF:-}" ]; then
  CONTAINERS_CONF=$(mktemp "${TMPDIR:-/tmp}/brats-containers.XXXXXX.conf")
  trap 'rm -f "$CONTAINERS_CONF"' EXIT
  cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  export CONTAINERS_CONF
fi

base=$(.ci/container-base.sh | tail -n 1)

# The build stage downloads from the npm registry: host networking, so it reaches whatever this machine reaches
# (the container bridge may have no route). It trusts this machine's CA bundle too, for a TLS-intercepting proxy;
# the bundle is mounted into the build stage's commands only and never lands in a layer.
args=(--network host --pull=never --build-arg "NODE_IMAGE=$base" --tag "$image")
ca="${BRATS_BUILD_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}"
if [ -s "$ca" ]; then
  args+=(--volume "$ca:/run/brats-build-ca.crt:ro" \
    --build-arg NODE_EXTRA_CA_CERTS=/run/brats-build-ca.crt --build-arg SSL_CERT_FILE=/run/brats-build-ca.crt)
fi

log "podman build $image from $base"
started=$(date +%s)
podman build "${args[@]}" . >&2
log "built $image in $(($(date +%s) - started)) s, $(podman image inspect --format '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
echo "$image"
