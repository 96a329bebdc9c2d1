#!/usr/bin/env bash
# Builds cgtrain against torch 2.x and runs every test there, on a CPU machine: GPU machines run torch 2.x's
# libtorch, this Debian 12 machine has 1.13, and CI never sees the other. Debian 13's libtorch-dev (torch 2.6, with
# OpenMPI 5, GCC 14, fmt 10, NumPy 2 and pymatgen 2025) is installed into a chroot made with debootstrap, this
# checkout is bind-mounted into it at the same path, and the build goes to BUILD_DIR (default build-torch2).
#
#   sudo scripts/check_torch2.sh [ctest args...]     # e.g. -R test_llama; the whole suite without arguments
#   sudo scripts/check_torch2.sh --run CMD [ARG...]  # build, then CMD in the chroot at the checkout's root, e.g.
#        --run env BUILD_DIR=build-torch2 bench/compare_cpu.sh   (cgtrain vs PyTorch 2.6 from Python, CPU)
#
# Needs root (debootstrap, chroot, mounts) and deb.debian.org. ROOTFS (default /var/tmp/cg-trixie) is made once
# (~2 min: debootstrap ~30 s, packages ~1.5 min) and reused; the build takes as long as ./scripts/build.sh.
# /usr/local/cuda, when present, is mounted too, so the NCCL backend compiles and links against torch 2.x (its
# tests skip without a GPU), and ctest's cuda_guarded_compile compiles the GPU build's CG_HAVE_CUDA_KERNELS code
# against torch 2.x's c10/cuda headers (scripts/check_cuda_guarded.py). DEMO=1 also runs scripts/demo.sh there.
# The mounts are undone on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd -P)
ROOTFS=${ROOTFS:-/var/tmp/cg-trixie}
BUILD=${BUILD_DIR:-build-torch2}
SUITE=${SUITE:-trixie}
[ "$(id -u)" = 0 ] || { echo "check_torch2: needs root (debootstrap, chroot, bind mounts); run it with sudo" >&2; exit 2; }
case "$BUILD" in /*) echo "check_torch2: BUILD_DIR must be relative to the checkout (it is built inside the chroot)" >&2; exit 2;; esac
PKGS="g++ cmake make libgtest-dev libgmock-dev libtorch-dev libopenmpi-dev openmpi-bin libhdf5-dev
      libsentencepiece-dev sentencepiece libspdlog-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
      libopenblas0-pthread lld libsymspg-dev python3-h5py python3-numpy python3-pymatgen python3-ase python3-spglib
      python3-torch"

if [ ! -x "$ROOTFS/usr/bin/apt-get" ]; then
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  echo "== debootstrap $SUITE into $ROOTFS"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOTFS" http://deb.debian.org/debian >/dev/null
fi

mounts=()
cleanup() { for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -R "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" || true; done; }
trap cleanup EXIT
bind() {  # bind SRC to the same path inside the chroot
  mkdir -p "$ROOTFS$1"
  mount --rbind "$1" "$ROOTFS$1" && mount --make-rslave "$ROOTFS$1" && mounts+=("$ROOTFS$1")
}
mount -t proc proc "$ROOTFS/proc" && mounts+=("$ROOTFS/proc")
bind /dev
bind /sys
bind "$REPO"
if [ -d /usr/local/cuda ]; then
  cuda=$(readlink -f /usr/local/cuda)
  bind "$cuda"
  [ -e "$ROOTFS/usr/local/cuda" ] || ln -s "$cuda" "$ROOTFS/usr/local/cuda"
fi
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"

in_root() { chroot "$ROOTFS" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 bash -c "$1"; }
in_root "missing=\$(for p in $(echo $PKGS); do dpkg-query -W -f='\${Status}' \$p 2>/dev/null | grep -q 'ok installed' || echo \$p; done)
  if [ -n \"\$missing\" ]; then echo \"== installing in $SUITE: \$(echo \$missing)\"; apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \$missing >/dev/null; fi"
echo "== $(in_root "dpkg-query -W -f='libtorch-dev \${Version}, ' libtorch-dev; dpkg-query -W -f='openmpi \${Version}, ' openmpi-bin; g++ --version | head -1")"

in_root "cd '$REPO' && BUILD_DIR='$BUILD' ./scripts/build.sh"
if [ "${1:-}" = --run ]; then
  shift
  in_root "cd '$REPO' && $(printf " %q" "$@")"
  exit
fi
ctest_args=$(printf " %q" "$@")
in_root "cd '$REPO/$BUILD' && OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  OMPI_MCA_rmaps_base_oversubscribe=1 ctest -j$(nproc) --output-on-failure $ctest_args"
if [ "${DEMO:-0}" = 1 ]; then
  in_root "cd '$REPO' && SKIP_INSTALL=1 SKIP_BUILD=1 BUILD_DIR='$BUILD' DEMO_RUN=runs/demo_torch2 ./scripts/demo.sh"
fi
echo "== check_torch2: torch 2.x build and tests passed ($BUILD)"
