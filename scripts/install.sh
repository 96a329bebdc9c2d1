#!/usr/bin/env bash
# Installs what cgtrain needs on a fresh Debian 12 machine (idempotent), and LLaMA-2's tokenizer source (npm).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
# cmake, make, g++ and pkg-config build it (a fresh Debian 12 has none of them); libgtest-dev: the test suites.
PKGS="cmake make g++ pkg-config libgtest-dev libtorch-dev libopenmpi-dev openmpi-bin libhdf5-dev libsentencepiece-dev
      sentencepiece libspdlog-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libopenblas0-pthread python3-h5py
      python3-numpy lld python3-pymatgen python3-ase libsymspg-dev"
missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "== installing: $(echo $missing)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# Without the pthread OpenBLAS, fp32 matmul falls back to reference BLAS (~25x slower).
if [ -x /usr/sbin/update-alternatives ]; then
  lib=$(ls /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 2>/dev/null || true)
  [ -n "$lib" ] && $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu "$lib" >/dev/null 2>&1 || true
fi
# LLaMA-2's vocabulary and merges ship in the npm package llama-tokenizer-js (converted by cgprep's tools).
if [ ! -f third_party/llama-tokenizer-js/llama-tokenizer.js ] && command -v npm >/dev/null; then
  echo "== fetching llama-tokenizer-js (npm)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent llama-tokenizer-js@1 >/dev/null 2>&1 && tar xzf llama-tokenizer-js-*.tgz) || true
  if [ -f "$tmp/package/llama-tokenizer.js" ]; then
    mkdir -p third_party/llama-tokenizer-js && cp "$tmp/package/llama-tokenizer.js" third_party/llama-tokenizer-js/
  else
    echo "warning: could not fetch llama-tokenizer-js; LLaMA-2 tokenizer tests will be skipped" >&2
  fi
  rm -rf "$tmp"
fi
