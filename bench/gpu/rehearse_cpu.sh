#!/usr/bin/env bash
# Rehearse bench/gpu/device_check.sh on this CPU before a short GPU lease is spent on it: its lora and sample stages
# run the very scripts the GPU run uses (run_7b_lora.sh, sample_7b.sh), pointed at the CPU build (build/) and the
# trained tiny demo model through EXTRA overrides. It checks the scripts' arguments, the config keys they pass and
# the RESULT / summary.json fields they read; the numbers it prints are the tiny model's on this CPU, not results.
# Needs ./scripts/build.sh and ./scripts/demo.sh (runs/demo) first. Exit status: 0 when every stage passed.
#   bench/gpu/rehearse_cpu.sh            logs and summary in a fresh /tmp/cg_rehearse.* folder (printed)
# BUILD_DIR (default build) and DEMO_RUN (default runs/demo) name another build and demo run, e.g. torch 2.x's:
#   sudo scripts/check_torch2.sh --run env BUILD_DIR=build-torch2 DEMO_RUN=runs/demo_torch2 bench/gpu/rehearse_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
demo=${DEMO_RUN:-runs/demo}
[ -x "$build/bench/bench_train_step" ] && [ -x "$build/sampler/cgsample" ] \
  || { echo "run ./scripts/build.sh first (BUILD_DIR=$build)" >&2; exit 1; }
[ -f "$demo/base_hf/config.json" ] || { echo "run ./scripts/demo.sh first (it trains $demo)" >&2; exit 1; }
dir=$(mktemp -d /tmp/cg_rehearse.XXXXXX)
# What bench/gpu/build.sh writes into build-gpu/env.sh, for the CPU build:
printf 'export CG_BUILD=%s CG_BACKEND=mpi\n' "$(cd "$build" && pwd)" > "$dir/env.sh"
hf=$demo/base_hf
# These replace the scripts' GPU settings: the tiny trained model, fp32 on the CPU, MPI.
export EXTRA="model.device=cpu model.dtype=fp32 parallel.backend=mpi model.hf_dir=$hf \
data.tokenizer=$hf/tokenizer.model train.micro_batch=2 train.seq_len=128 train.threads=2 \
log.level=warn"
export OUT=$dir/out LOGS=$dir/out BUILD_DIR=$dir STAGES="profile lora hf sample ops graphs long e2e" STEPS=2 WARMUP=1 TRAIN_S=120 SAMPLE_S=300 N=16 BS=8 \
  MAX_NEW=300 TOKENIZER=$hf/tokenizer.model PEAK_TFLOPS=0.2
[ -d "$demo/adapter" ] && export ADAPTER=$demo/adapter  # sample_7b.sh's trained-model path too
export E2E_OVERRIDES="model.device=cpu model.dtype=fp32 parallel.backend=mpi train.threads=2"
bench/gpu/device_check.sh
echo "rehearsal logs: $OUT"
# device_check.sh keeps going after a failed stage; here any failure is the answer.
if grep -q "rc [1-9]" "$OUT/summary.txt"; then
  echo "a stage failed: see $OUT/summary.txt and the stage's log" >&2
  exit 1
fi
grep -q "^7B LoRA r 8 on all-linear" "$OUT/lora_7b.log" && grep -q "share_prompt=false" "$OUT/sample_7b.log" \
  || { echo "the stages ran but printed no result line: see $OUT" >&2; exit 1; }
echo "rehearsal passed"
