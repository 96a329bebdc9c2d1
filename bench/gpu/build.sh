#!/usr/bin/env bash
# On the GPU machine (no network needed): build cgtrain's GPU binaries against the Python torch's libtorch (CUDA),
# with NCCL, into build-gpu/. Libraries come from the .debs that bench/gpu/fetch_debs.sh downloaded elsewhere
# (bench/gpu/debs/, unpacked here with dpkg -x into bench/gpu/debs/root), or from the system when there are none.
#   bench/gpu/build.sh                 then: source build-gpu/env.sh; bench/gpu/run_7b_lora.sh
# Env: PYTHON (python3), BUILD_DIR (build-gpu), NCCL_HOME (else the pip nvidia-nccl wheel, else CUDA's folder),
#      CUDA_HOME (/usr/local/cuda), TORCH_CMAKE_PREFIX (else torch.utils.cmake_prefix_path), JOBS (nproc),
#      CONFIGURE_ONLY=1 (stop after cmake's configure step: checks where every library was found).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
BUILD=$(realpath -m "${BUILD_DIR:-build-gpu}")
DEBS=$PWD/bench/gpu/debs
ROOT=$DEBS/root
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
mkdir -p "$BUILD"
arch=x86_64-linux-gnu

# 1. Libraries from the carried .debs, unpacked without root.
prefix_path=() ; lib_path=() ; extra_cxx="" ; cmake_extra=()
if compgen -G "$DEBS/*.deb" >/dev/null; then
  if [ ! -f "$ROOT/.unpacked" ] || [ -n "$(find "$DEBS" -maxdepth 1 -name '*.deb' -newer "$ROOT/.unpacked")" ]; then
    rm -rf "$ROOT" && mkdir -p "$ROOT"
    for d in "$DEBS"/*.deb; do dpkg -x "$d" "$ROOT"; done
    touch "$ROOT/.unpacked"
  fi
  U=$ROOT/usr
  prefix_path+=("$U" "$U/lib/$arch/cmake")
  lib_path+=("$U/lib/$arch" "$U/lib/$arch/openmpi/lib" "$U/lib/$arch/hdf5/serial")
  extra_cxx="-isystem $U/include"  # header-only CLI11 / nlohmann found by #include
  export OPAL_PREFIX=$U            # relocated OpenMPI: wrappers and plugins look under $ROOT/usr
  export PKG_CONFIG_LIBDIR=$U/lib/$arch/pkgconfig:$U/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$ROOT
  export PATH=$U/bin:$PATH
  # FindHDF5 cannot use Debian's h5cc from another prefix: name the serial library and headers directly.
  cmake_extra+=(-DMPI_C_COMPILER="$U/bin/mpicc.openmpi" -DPKG_CONFIG_EXECUTABLE="$U/bin/pkgconf"
                -DHDF5_ROOT="$U" -DHDF5_C_COMPILER_EXECUTABLE=/nonexistent/h5cc
                -DHDF5_C_INCLUDE_DIR="$U/include/hdf5/serial"
                -DHDF5_hdf5_LIBRARY_RELEASE="$U/lib/$arch/hdf5/serial/libhdf5.so")
fi

# 2. torch from Python: its CMake package, its C++ ABI and CUDA version.
TORCH_CMAKE=${TORCH_CMAKE_PREFIX:-$($PY -c 'import torch; print(torch.utils.cmake_prefix_path)')}
if [ -z "${TORCH_CMAKE_PREFIX:-}" ]; then
  read -r tv abi cu < <($PY -c 'import torch
print(torch.__version__, int(torch._C._GLIBCXX_USE_CXX11_ABI), torch.version.cuda)')
  echo "torch $tv (cxx11 ABI $abi, CUDA $cu) from $TORCH_CMAKE"
  [ "$abi" = 1 ] || { echo "this torch uses the pre-cxx11 ABI and cannot link Debian's C++ libraries" \
    "(spdlog, yaml-cpp); use torch >= 2.7 wheels or the cxx11-abi libtorch zip" \
    "(TORCH_CMAKE_PREFIX=<libtorch>/share/cmake)" >&2; exit 1; }
  [ "$cu" != None ] || { echo "this torch has no CUDA; install a CUDA build of torch" >&2; exit 1; }
  tlib=$($PY -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  lib_path+=("$tlib")
fi

# 3. NCCL headers + libnccl.so: NCCL_HOME, else the nvidia-nccl pip wheel torch depends on, else CUDA's folder.
if [ -z "${NCCL_HOME:-}" ]; then
  NCCL_HOME=$($PY -c 'import nvidia.nccl; print(list(nvidia.nccl.__path__)[0])' 2>/dev/null || echo "$CUDA_HOME")
fi
if [ -f "$NCCL_HOME/lib/libnccl.so.2" ] && [ ! -e "$NCCL_HOME/lib/libnccl.so" ]; then
  # pip wheels ship only the soname; give the linker an unversioned name in the build folder.
  mkdir -p "$BUILD/nccl/lib" && ln -sf "$NCCL_HOME/lib/libnccl.so.2" "$BUILD/nccl/lib/libnccl.so"
  ln -sfn "$NCCL_HOME/include" "$BUILD/nccl/include"
  lib_path+=("$NCCL_HOME/lib")
  NCCL_HOME=$BUILD/nccl
fi
export NCCL_HOME CUDA_HOME
lib_path+=("$NCCL_HOME/lib" "$CUDA_HOME/lib64")

join() { local IFS=';'; echo "$*"; }
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$(join "${prefix_path[@]}" "$TORCH_CMAKE")" \
  -DCMAKE_LIBRARY_PATH="$(join "${lib_path[@]}")" -DCMAKE_CXX_FLAGS="$extra_cxx" \
  -DCUDAToolkit_ROOT="$CUDA_HOME" -DCUDA_TOOLKIT_ROOT_DIR="$CUDA_HOME" "${cmake_extra[@]}"
[ -n "${CONFIGURE_ONLY:-}" ] && exit 0
cmake --build "$BUILD" -j"${JOBS:-$(nproc)}" --target bench_train_step cgtrain cgsample cgprep cgtok ${EXTRA_TARGETS:-}

# 4. What the binaries need at run time.
{
  echo "# source me before running the GPU benches (written by bench/gpu/build.sh)"
  echo "export LD_LIBRARY_PATH=$(IFS=:; echo "${lib_path[*]}")\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
  if [ -n "${OPAL_PREFIX:-}" ]; then
    # dpkg -x makes no update-alternatives links: give mpirun/mpiexec their usual names.
    mkdir -p "$BUILD/bin" && ln -sf "$OPAL_PREFIX/bin/mpirun.openmpi" "$BUILD/bin/mpirun" \
      && ln -sf "$OPAL_PREFIX/bin/mpirun.openmpi" "$BUILD/bin/mpiexec"
    echo "export OPAL_PREFIX=$OPAL_PREFIX PATH=$BUILD/bin:$OPAL_PREFIX/bin:\$PATH"
  fi
  echo "export CG_BUILD=$BUILD"
} > "$BUILD/env.sh"
echo "built into $BUILD; now: source $BUILD/env.sh"
