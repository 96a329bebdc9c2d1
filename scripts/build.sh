#!/usr/bin/env bash
# Configure and build into ./build (Release with debug info), using every core.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" "$@"
# Setup step: LLaMA-2's tokenizer.model from llama-tokenizer-js (use it as data.tokenizer=third_party/llama2/tokenizer.model).
js=third_party/llama-tokenizer-js/llama-tokenizer.js
if [ -f "$js" ] && [ -x "$BUILD/data/cgtok" ] && [ ! -f third_party/llama2/tokenizer.model ]; then
  mkdir -p third_party/llama2 && "$BUILD/data/cgtok" llama-js "$js" third_party/llama2/tokenizer.model
fi
