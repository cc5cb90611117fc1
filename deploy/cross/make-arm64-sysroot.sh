#!/usr/bin/env bash
# Makes an arm64 (aarch64) sysroot of Debian 12 packages for cross-building the agent with
# deploy/cross/aarch64-linux-gnu.cmake, and for running it under qemu-user (QEMU_LD_PREFIX).
#
#   deploy/cross/make-arm64-sysroot.sh <sysroot dir>
#
# The packages come from this machine's apt sources, resolved by apt with a private state
# (<sysroot dir>.apt/: its own package lists, an empty dpkg status, its own download cache), then
# unpacked with dpkg-deb -x. Nothing is installed on this machine and its dpkg database is not
# touched. Why not multiarch (dpkg --add-architecture arm64; apt-get install libtorch-dev:arm64):
# libtorch-dev has no Multi-Arch field, so its arm64 build cannot sit beside the amd64 one, and
# libtorch1.13:arm64 depends on libgflags2.2 and libgoogle-glog0v6, which have none either: apt
# resolves `apt-get install libtorch1.13:arm64` by removing the amd64 LibTorch (libtorch1.13,
# libtorch-dev, python3-torch) that the x86 build needs. libpq-dev, which the configure step looks
# for (the server's PostgreSQL store), has no Multi-Arch field either.
#
# After unpacking, the tree is made to look installed: /lib, /bin and /sbin merged into /usr (as
# on an installed Debian 12), absolute symlinks made relative so they resolve inside the sysroot,
# and the BLAS/LAPACK alternatives that the packages' maintainer scripts would have set up.
# Idempotent: a sysroot made from the same package list is kept (remove the directory to redo).
set -euo pipefail
SYSROOT="${1:?usage: make-arm64-sysroot.sh <sysroot dir>}"
mkdir -p "$SYSROOT"
SYSROOT="$(cd "$SYSROOT" && pwd)"
APTDIR="$SYSROOT.apt"
TRIPLET=aarch64-linux-gnu

# What the agent links (common/, common/http/, agent/ and its LibTorch module), plus what the
# top-level CMakeLists.txt looks for at configure time for the server's libraries (PNG, JPEG,
# libpq, libseccomp), so that one configure serves both.
PACKAGES=(
  libtorch-dev
  libboost1.81-dev libboost-json1.81-dev libssl-dev libsqlite3-dev libspdlog-dev libfmt-dev
  libtomlplusplus-dev libcli11-dev prometheus-cpp-dev zlib1g-dev
  libpng-dev libjpeg62-turbo-dev libpq-dev libseccomp-dev
)
STAMP="$SYSROOT/.edgeprune-sysroot"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "${PACKAGES[*]}" ]]; then
  echo "sysroot $SYSROOT is ready (made from the same package list)"
  exit 0
fi

mkdir -p "$APTDIR/state/lists/partial" "$APTDIR/cache/archives/partial"
: >"$APTDIR/state/status"
# Only arm64 indexes, a private state and cache; the sources and keys stay this machine's.
cat >"$APTDIR/apt.conf" <<EOF
APT::Architecture "arm64";
#clear APT::Architectures;
APT::Architectures { "arm64"; };
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dir::State "$APTDIR/state";
Dir::State::status "$APTDIR/state/status";
Dir::Cache "$APTDIR/cache";
Debug::NoLocking "true";
EOF
export APT_CONFIG="$APTDIR/apt.conf"
echo "== arm64 package lists (private, in $APTDIR)"
apt-get update -qq
echo "== downloading ${#PACKAGES[@]} packages and their dependencies"
apt-get install -y -qq --download-only "${PACKAGES[@]}" >"$APTDIR/download.log" 2>&1 ||
  { tail -n 20 "$APTDIR/download.log" >&2; exit 1; }
debs=("$APTDIR"/cache/archives/*.deb)
echo "${#debs[@]} packages, $(du -cb "${debs[@]}" | tail -n1 | cut -f1) bytes"

echo "== unpacking into $SYSROOT"
rm -rf "$SYSROOT"
mkdir -p "$SYSROOT"
for deb in "${debs[@]}"; do dpkg-deb -x "$deb" "$SYSROOT"; done
# Merge /lib, /bin, /sbin into /usr, as Debian 12's usrmerge does on an installed system: some
# packages ship a file under /lib and a symlink to it under /usr/lib, or the other way round.
for d in lib bin sbin; do
  if [[ -d "$SYSROOT/$d" && ! -L "$SYSROOT/$d" ]]; then
    mkdir -p "$SYSROOT/usr/$d"
    cp -a "$SYSROOT/$d/." "$SYSROOT/usr/$d/"
    rm -rf "${SYSROOT:?}/$d"
  fi
  ln -sfn "usr/$d" "$SYSROOT/$d"
done
# Absolute symlinks point into this machine's root; make them relative, inside the sysroot.
while IFS= read -r -d '' link; do
  target="$(readlink "$link")"
  ln -sfn "$(realpath -m -s --relative-to="$(dirname "$link")" "$SYSROOT$target")" "$link"
done < <(find "$SYSROOT" -type l -lname '/*' -print0)
# update-alternatives would have made these (libblas3, liblapack3 postinst).
LIBDIR="$SYSROOT/usr/lib/$TRIPLET"
for alt in blas/libblas.so.3 lapack/liblapack.so.3; do
  if [[ -e "$LIBDIR/$alt" && ! -e "$LIBDIR/$(basename "$alt")" ]]; then
    ln -s "$alt" "$LIBDIR/$(basename "$alt")"
  fi
done
dangling="$(find "$SYSROOT/usr/lib/$TRIPLET" "$SYSROOT/usr/include" -xtype l | wc -l)"
echo "sysroot: $(du -sm "$SYSROOT" | cut -f1) MiB, $dangling dangling symlinks under usr/lib/$TRIPLET and usr/include"
printf '%s' "${PACKAGES[*]}" >"$STAMP"
