#!/usr/bin/env bash
# Run HERE (Debian 12, with network): downloads the .debs listed in bench/gpu/packages.txt into bench/gpu/debs/
# (git-ignored, ~40 MB). Carry that folder to the GPU machine with the checkout; bench/gpu/build.sh unpacks it there
# with `dpkg -x` (no root, no apt, no network needed).
#   bench/gpu/fetch_debs.sh            the .debs
#   bench/gpu/fetch_debs.sh --wheels   also transformers + peft wheels (bench/gpu/wheels/) for hf_peft_baseline.py;
#                                      PYVER=3.10 (the GPU machine's Python) picks the wheels' Python version
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/debs"
mkdir -p "$out"
mapfile -t pkgs < <(grep -v '^\s*#' "$here/packages.txt" | awk 'NF {print $1}')
echo "downloading ${#pkgs[@]} packages into $out"
(cd "$out" && apt-get download "${pkgs[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
n=$(ls "$out"/*.deb | wc -l)
[ "$n" -ge "${#pkgs[@]}" ] || { echo "only $n of ${#pkgs[@]} .debs downloaded (see above)" >&2; exit 1; }
du -sh "$out"
if [ "${1:-}" = --wheels ]; then
  # transformers + peft and what they import, without torch (the GPU machine has its CUDA build already).
  python3 -m pip download --dest "$here/wheels" --no-deps --only-binary=:all: --python-version "${PYVER:-3.10}" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    transformers peft accelerate huggingface-hub tokenizers safetensors regex pyyaml tqdm packaging psutil \
    filelock fsspec requests urllib3 idna certifi charset-normalizer
fi
