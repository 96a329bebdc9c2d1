#!/usr/bin/env bash
# On the GPU machine (no network needed): build cgtrain's GPU binaries against the Python torch's libtorch (CUDA),
# with NCCL, into build-gpu/. Libraries come from the .debs that bench/gpu/fetch_debs.sh downloaded elsewhere
# (bench/gpu/debs/, unpacked here with dpkg -x into bench/gpu/debs/root), or from the system when there are none.
#   bench/gpu/build.sh                 then: source build-gpu/env.sh; bench/gpu/run_7b_lora.sh
# Env: PYTHON (python3), BUILD_DIR (build-gpu), NCCL_HOME (else the pip nvidia-nccl wheel, else CUDA's folder),
#      CUDA_HOME (/usr/local/cuda), CUDACXX (else $CUDA_HOME/bin/nvcc), TORCH_CMAKE_PREFIX (else
#      torch.utils.cmake_prefix_path), JOBS (nproc), CONFIGURE_ONLY=1 (stop after cmake's configure step: checks
#      where every library was found), EXTRA_TARGETS (built besides bench_train_step cgtrain cgsample cgprep cgtok,
#      e.g. "cgexport cgeval cgsweep"). CUDAFLAGS=-allow-unsupported-compiler when nvcc rejects the host g++.
# torch 2.x's CMake files (Caffe2/public/cuda.cmake) enable the CUDA language (so they need nvcc), may look for
# cuDNN and for CUDA::nvToolsExt (gone from CUDA >= 12.9); steps 2-4 below supply what they look for.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
BUILD=$(realpath -m "${BUILD_DIR:-build-gpu}")
DEBS=$PWD/bench/gpu/debs
ROOT=$DEBS/root
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
if [ ! -x "$CUDA_HOME/bin/nvcc" ] && command -v nvcc >/dev/null; then  # a toolkit elsewhere: the nvcc on PATH
  CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  echo "note: CUDA_HOME=$CUDA_HOME (the nvcc on PATH)"
fi
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
    "(spdlog, fmt, yaml-cpp, sentencepiece, gtest); use torch >= 2.7 wheels (2.6: the cu126 ones) or the" \
    "cxx11-abi libtorch zip" \
    "(TORCH_CMAKE_PREFIX=<libtorch>/share/cmake)" >&2; exit 1; }
  [ "$cu" != None ] || { echo "this torch has no CUDA; install a CUDA build of torch" >&2; exit 1; }
  tlib=$($PY -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  # The wheel's CUDA runtime before the toolkit's: the binaries link libcudart directly (NCCL backend) and through
  # torch's CMake, with the toolkit's soname; libtorch_cuda reuses whichever copy the process loads first, and a
  # toolkit runtime older than the wheel's (12.4 under a cu128 wheel) lacks symbols torch needs.
  wheel_cudart=$($PY -c 'import glob, os, nvidia
hits = [p for d in nvidia.__path__ for p in glob.glob(os.path.join(d, "**", "libcudart.so.*"), recursive=True)]
print(os.path.dirname(sorted(hits)[0]) if hits else "")' 2>/dev/null || true)
  lib_path+=(${wheel_cudart:+"$wheel_cudart"} "$tlib")
  # cuDNN from its pip wheel (it ships only libcudnn.so.N, which FindCUDNN does not look for): torch 2.0/2.1's
  # Caffe2Config stops when the cuDNN it was built with is not found.
  read -r cudnn_inc cudnn_lib < <($PY -c 'import glob, os, nvidia.cudnn as m
d = list(m.__path__)[0]; libs = sorted(glob.glob(os.path.join(d, "lib", "libcudnn.so*")))
print(os.path.join(d, "include"), libs[0])' 2>/dev/null) || true
  if [ -n "${cudnn_lib:-}" ] && [ -f "$cudnn_inc/cudnn.h" ]; then
    cmake_extra+=(-DCUDNN_INCLUDE_PATH="$cudnn_inc" -DCUDNN_LIBRARY_PATH="$cudnn_lib")
  fi
fi
TORCH_INCLUDE=$(realpath -m "$TORCH_CMAKE/../../include")

# 2b. {fmt}: torch wheels (since ~2.2) ship their own, newer fmt headers in $TORCH_INCLUDE, searched before
# the distribution's include folder; spdlog compiled against them does not link with libspdlog/libfmt 9 (undefined
# fmt::v10/v11 symbols). -I folders come before every -isystem one, so one holding only a link to the fmt headers
# the libraries were built with makes those win.
fmt_root=$([ -n "${U:-}" ] && echo "$U/include" || echo /usr/include)
if [ -d "$TORCH_INCLUDE/fmt" ] && [ -f "$fmt_root/fmt/core.h" ]; then
  mkdir -p "$BUILD/cg-include" && ln -sfn "$fmt_root/fmt" "$BUILD/cg-include/fmt"
  extra_cxx="-I$BUILD/cg-include${extra_cxx:+ $extra_cxx}"
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

# 4. What torch 2.x's Caffe2/public/cuda.cmake needs from the CUDA toolkit: nvcc (it calls enable_language(CUDA),
# which looks only at CUDACXX and PATH, and stops on "two conflicting CUDA versions" when that nvcc is not
# CUDA_HOME's), and a CUDA::nvToolsExt target, which CUDA >= 12.9 no longer provides (NVTX is header-only nvtx3
# there). The fix-up file is included at the end of project(), before find_package(Torch); it does nothing on a
# toolkit that still has libnvToolsExt, and nothing without a toolkit.
NVCC=${CUDACXX:-$CUDA_HOME/bin/nvcc}
if [ -x "$NVCC" ]; then
  cmake_extra+=(-DCMAKE_CUDA_COMPILER="$NVCC")
  nv=$("$NVCC" --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
  if [ -n "${cu:-}" ] && [ "$cu" != None ] && [ -n "$nv" ] && [ "${cu%%.*}" != "$nv" ]; then
    echo "warning: $NVCC is CUDA $nv but torch was built with CUDA $cu: the binaries would load two CUDA runtimes;" \
      "set CUDA_HOME to a CUDA ${cu%%.*}.x toolkit" >&2
  fi
  if [ -n "${cu:-}" ] && [ "$cu" != None ] && [ -z "${wheel_cudart:-}" ]; then
    echo "note: no CUDA runtime in the wheel's nvidia/ folder: the binaries use $CUDA_HOME's, which must not be" \
      "older than torch's CUDA $cu" >&2
  fi
fi
fixups=$BUILD/cg_torch_cuda_fixups.cmake
cat > "$fixups" <<'CMAKE'
# Written by bench/gpu/build.sh (CMAKE_PROJECT_INCLUDE): CUDA toolkit fix-ups for torch 2.x's CMake files.
include_guard(GLOBAL)
find_package(CUDAToolkit QUIET)
if(CUDAToolkit_FOUND)
  if(NOT TARGET CUDA::nvToolsExt)  # torch 2.2+: torch::nvtoolsext links CUDA::nvToolsExt
    add_library(CUDA::nvToolsExt INTERFACE IMPORTED)
    if(TARGET CUDA::nvtx3)
      target_link_libraries(CUDA::nvToolsExt INTERFACE CUDA::nvtx3)
    else()
      target_include_directories(CUDA::nvToolsExt INTERFACE "${CUDAToolkit_INCLUDE_DIRS}")
    endif()
    message(STATUS "cgtrain: no libnvToolsExt in CUDA ${CUDAToolkit_VERSION}; CUDA::nvToolsExt = header-only nvtx3")
  endif()
  if(NOT EXISTS "${CUDAToolkit_LIBRARY_DIR}/libnvToolsExt.so")  # torch 2.0/2.1: find_library(LIBNVTOOLSEXT ...)
    set(LIBNVTOOLSEXT "${CMAKE_DL_LIBS}" CACHE FILEPATH "stand-in for libnvToolsExt (nvtx3 is header-only)")
  endif()
endif()
CMAKE
cmake_extra+=(-DCMAKE_PROJECT_INCLUDE="$fixups")
# pip torch bundles its own renamed libgomp; -fopenmp would load the system's too. The CPU attention's threading is
# all it buys, and GPU runs do not use it.
cmake_extra+=(-DCG_WITH_OPENMP=OFF)
# Nothing of ours names a libtorch_cuda symbol (no c10/cuda headers): a linker that defaults to --as-needed (Ubuntu's)
# could drop it, and with it torch's CUDA hooks ("model.device=cuda but this libtorch sees no GPU").
cmake_extra+=(-DCMAKE_EXE_LINKER_FLAGS=-Wl,--no-as-needed)

join() { local IFS=';'; echo "$*"; }
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$(join "${prefix_path[@]}" "$TORCH_CMAKE")" \
  -DCMAKE_LIBRARY_PATH="$(join "${lib_path[@]}")" -DCMAKE_CXX_FLAGS="$extra_cxx" \
  -DCUDAToolkit_ROOT="$CUDA_HOME" -DCUDA_TOOLKIT_ROOT_DIR="$CUDA_HOME" "${cmake_extra[@]}"
[ -n "${CONFIGURE_ONLY:-}" ] && exit 0
# Keep going past a target that fails to compile, so one (short) GPU lease shows every error and still builds what
# compiles: the exit status is the build's, after env.sh is written for the binaries that did build.
read -r -a targets <<< "${TARGETS:-bench_train_step cgsample cgtrain cgprep cgtok} ${EXTRA_TARGETS:-}"
keep_going=-k; grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja' "$BUILD/CMakeCache.txt" && keep_going="-k 0"
build_rc=0
cmake --build "$BUILD" -j"${JOBS:-$(nproc)}" --target "${targets[@]}" -- $keep_going || build_rc=$?
have_nccl=0
grep -q '^CG_NCCL_LIB:FILEPATH=/' "$BUILD/CMakeCache.txt" && grep -q '^CG_CUDART_LIB:FILEPATH=/' "$BUILD/CMakeCache.txt" \
  && have_nccl=1

# 5. What the binaries need at run time.
{
  echo "# source me before running the GPU benches (written by bench/gpu/build.sh)"
  echo "export LD_LIBRARY_PATH=$(IFS=:; echo "${lib_path[*]}")\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
  if [ -n "${OPAL_PREFIX:-}" ]; then
    # dpkg -x makes no update-alternatives links: give mpirun/mpiexec their usual names.
    mkdir -p "$BUILD/bin" && ln -sf "$OPAL_PREFIX/bin/mpirun.openmpi" "$BUILD/bin/mpirun" \
      && ln -sf "$OPAL_PREFIX/bin/mpirun.openmpi" "$BUILD/bin/mpiexec"
    echo "export OPAL_PREFIX=$OPAL_PREFIX PATH=$BUILD/bin:$OPAL_PREFIX/bin:\$PATH"
  fi
  # Open MPI 4.1 refuses to start (even a singleton or mpirun -np 1) when its launcher finds neither ssh nor rsh,
  # which a bare image may lack; on one node the isolated launcher needs neither.
  echo 'command -v ssh >/dev/null || command -v rsh >/dev/null || export OMPI_MCA_plm=isolated'
  # PMIx (under OpenMPI) looks for its plugins at the packaged path and warns when it finds no compression one.
  echo "export PMIX_MCA_pcompress_base_silence_warning=1"
  # The backend the benches pass (one rank exchanges nothing either way; nccl when this build has it).
  echo "export CG_BUILD=$BUILD CG_BACKEND=$([ "$have_nccl" = 1 ] && echo nccl || echo mpi)"
} > "$BUILD/env.sh"
built=(); missing=()
for t in "${targets[@]}"; do
  if [ -n "$(find "$BUILD" -maxdepth 3 -type f -name "$t" -perm -u+x -print -quit)" ]; then built+=("$t"); else missing+=("$t"); fi
done
echo "built into $BUILD (NCCL backend: $have_nccl): ${built[*]}${missing:+; NOT built: ${missing[*]}}"
# 6. What the loader resolves for a built binary (bench_train_step, else cgsample: TARGETS may leave out either):
# torch's CUDA library present, one CUDA runtime, nothing missing.
probe=""
for p in bench/bench_train_step sampler/cgsample; do [ -x "$BUILD/$p" ] && { probe=$BUILD/$p; break; }; done
[ -n "$probe" ] || { echo "build.sh: neither bench_train_step nor cgsample was built (above)" >&2
                     exit $(( build_rc ? build_rc : 1 )); }
deps=$(. "$BUILD/env.sh" && ldd "$probe" 2>&1 || true)
# Here-strings, not pipes: under pipefail a grep -q that stops reading early fails its writer (SIGPIPE), and a
# grep that matches nothing (a CPU libtorch) would end the script under set -e.
{ grep -E 'libcudart|libtorch_cuda|libnccl|not found' <<<"$deps" || true; } | sed 's/^/  loads: /'
if grep -q "not found" <<<"$deps"; then
  echo "build.sh: $(basename "$probe") needs a library the loader does not find (above); add its folder to" \
    "LD_LIBRARY_PATH in $BUILD/env.sh" >&2
  exit 1
fi
if [ "${cu:-None}" != None ] && ! grep -q libtorch_cuda <<<"$deps"; then
  echo "build.sh: $(basename "$probe") does not load libtorch_cuda, so torch would see no GPU" >&2
  exit 1
fi
echo "now: source $BUILD/env.sh"
exit $build_rc
