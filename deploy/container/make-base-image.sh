#!/usr/bin/env bash
# Makes the image debian:bookworm-slim from Debian's own packages, for a
# machine that has Podman but no image registry it can reach (the
# container test builds the node's image on top of it).  Tagged with the
# full name a `FROM debian:bookworm-slim` resolves to, so the Dockerfile
# builds unchanged here and against a registry.  Does nothing when the
# image is there already: a run of the tests pays for it once per machine.
#
#   deploy/container/make-base-image.sh          make it when missing
#   FORCE=1 deploy/container/make-base-image.sh  make it again
#
# The Debian mirror is the one apt already uses on this machine (its
# sources), so the base has the same packages this machine trusts.  The
# machine's extra CA certificates (/usr/local/share/ca-certificates) go
# into the base too: behind a proxy that re-signs TLS, pip in a build
# fails without them.  Needs root (debootstrap) and podman.
set -euo pipefail
IMAGE=docker.io/library/debian:bookworm-slim
SUITE=bookworm

if [ "${FORCE:-0}" != 1 ] && podman image exists "$IMAGE"; then
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "make-base-image: debootstrap needs root" >&2; exit 1; }

# The first Debian archive (not its security archive) in apt's sources,
# in either format (one-line "deb URI SUITE ..." or deb822 "URIs: URI").
apt_uris() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }'
  cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" { print $2 }'
}
mirror=$(apt_uris | grep -E '/debian/?$' | head -1)
security=$(apt_uris | grep -E '/debian-security/?$' | head -1)
[ -n "$mirror" ] || { echo "make-base-image: no Debian archive in apt's sources" >&2; exit 1; }
security=${security:-${mirror%/debian*}/debian-security}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
echo "make-base-image: debootstrap $SUITE from $mirror"
debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }

if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
fi
cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb $security $SUITE-security main
SOURCES
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log "$rootfs"/tmp/*

tar -C "$rootfs" -c . | podman import --quiet \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["bash"]' - "$IMAGE" >/dev/null
echo "make-base-image: $IMAGE made ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"
