#!/usr/bin/env bash
# The README's test command: install, build, run every suite (unit and mpirun) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
./scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j"$(nproc)" "$@"
