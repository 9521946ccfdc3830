#!/usr/bin/env bash
# Build guard's container image with buildah (no daemon): `make image`.
#
#   PYTHON        interpreter whose pip makes the wheelhouse (default: python3)
#   IMAGE         name:tag of the built image (default: localhost/guard:<version>)
#   BASE          base image (default: docker.io/library/debian:bookworm-slim)
#   BOOTSTRAP_BASE=1
#                 when BASE is not in local storage, make it with debootstrap
#                 (--variant=minbase bookworm, from the mirror apt uses) instead of pulling it:
#                 for machines, like CI here, that cannot reach public image registries.
#                 The debootstrapped root is cached in $IMAGE_CACHE (default build/image-cache).
#   BUILDAH_ISOLATION (default chroot), STORAGE_DRIVER (default vfs)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VERSION=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
IMAGE=${IMAGE:-localhost/guard:$VERSION}
BASE=${BASE:-docker.io/library/debian:bookworm-slim}
IMAGE_CACHE=${IMAGE_CACHE:-build/image-cache}
STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
buildah() { command buildah --storage-driver "$STORAGE_DRIVER" "$@"; }

debian_mirror() {
    # The first Debian mirror apt is configured with (deb822 .sources or one-line .list).
    local uri
    uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
            /etc/apt/sources.list 2>/dev/null \
          | grep -v security | sed -E 's/^URIs:[[:space:]]*//; s/^deb (\[[^]]*\] )?//' \
          | awk '{print $1; exit}')
    echo "${uri:-http://deb.debian.org/debian}"
}

make_base() {
    local tarball="$IMAGE_CACHE/debian-bookworm-minbase.tar"
    mkdir -p "$IMAGE_CACHE"
    if [ ! -s "$tarball" ]; then
        local root mirror start
        root=$(mktemp -d "${TMPDIR:-/tmp}/guard-base.XXXXXX")
        mirror=$(debian_mirror)
        if ! python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/dists/bookworm/Release", timeout=20)' "$mirror" 2>/dev/null; then
            echo "image: infrastructure: the Debian mirror $mirror (from /etc/apt) is unreachable; the base image cannot be made (not a defect of guard)" >&2
            exit 3
        fi
        start=$(date +%s)
        echo "image: debootstrap --variant=minbase bookworm from $mirror" >&2
        debootstrap --variant=minbase bookworm "$root" "$mirror" >"$IMAGE_CACHE/debootstrap.log" 2>&1 \
            || { tail -20 "$IMAGE_CACHE/debootstrap.log" >&2; rm -rf "$root"; exit 3; }
        # As the slim image: no apt lists, docs or man pages; apt sources point at the mirror.
        rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* \
               "$root"/usr/share/man/* "$root"/usr/share/info/*
        printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" \
            >"$root/etc/apt/sources.list"
        tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$root"
        echo "image: debootstrap took $(( $(date +%s) - start )) s (cached in $tarball)" >&2
    fi
    local ctr mnt
    ctr=$(buildah from scratch)
    mnt=$(buildah mount "$ctr")
    tar -C "$mnt" --numeric-owner -xf "$tarball"
    buildah umount "$ctr" >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd bash --label org.opencontainers.image.description="debootstrap minbase bookworm (guard CI)" "$ctr"
    buildah commit --quiet "$ctr" "$BASE" >/dev/null
    buildah rm "$ctr" >/dev/null
}

# 1. The wheelhouse, on the host (the build has no route to the package index).
rm -rf build/wheelhouse
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --constraint image/constraints.txt \
    --wheel-dir build/wheelhouse .

# 2. The base image.
if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
    if [ "${BOOTSTRAP_BASE:-0}" = 1 ]; then
        make_base
    else
        buildah pull "$BASE"
    fi
fi

# 3. The image.
start=$(date +%s)
buildah bud --quiet --pull=never --layers=false --format oci \
    --build-arg BASE="$BASE" --build-arg VERSION="$VERSION" \
    --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    -f Containerfile -t "$IMAGE" . >/dev/null
echo "image: built $IMAGE in $(( $(date +%s) - start )) s" >&2
