#!/usr/bin/env bash
# Every GPU check of issue 8 as one command, sized for a short lease of one GPU (~12 minutes after the machine
# starts): build, the NCCL suite at 1 rank, 7B-shaped LoRA throughput (q,v then all-linear) with the HF + PEFT
# baseline, 7B sampling. Each stage has its own time limit and a failed stage does not stop the next; logs and
# RESULT lines land in $OUT (the device tool brings that folder back), else bench/gpu/results/.
#
# Prepare here (network): bench/gpu/fetch_debs.sh  and  ./scripts/build.sh (third_party/ with LLaMA-2's tokenizer).
# Then, through the device tool:
#   run(command="bench/gpu/device_check.sh", carry=["bench/gpu/debs", "third_party"], timeout_s=600)
# Env: BUILD_S (300), TRAIN_S (150 per target set), SAMPLE_S (180: shared prompt on, then off) stage limits in
#      seconds, each cut to what is left of TOTAL_S (560: the device tool stops a command at 600 s; a stage with
#      under 30 s left is skipped and says how to run it next); STAGES to pick a subset
#      (default "build nccl lora sample"; a second call on a warm machine can skip "build": build-gpu/ stays).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench/gpu/results}
mkdir -p "$OUT"
STAGES=${STAGES:-build nccl lora sample}
log() { echo "== [$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/summary.txt"; }
TOTAL_S=${TOTAL_S:-560}  # the whole run's budget: the device tool stops a command at 600 s
stage() {  # stage NAME LIMIT_S CMD...: run with a limit, log to $OUT/NAME.log, record the outcome
  local name=$1 limit=$2; shift 2
  local left=$(( TOTAL_S - SECONDS ))
  if [ "$left" -lt 30 ]; then
    log "$name: skipped, ${left} s left of TOTAL_S=$TOTAL_S (rerun with STAGES=\"$name ...\"; build-gpu/ stays on a warm machine)"
    return 125
  fi
  [ "$limit" -le "$left" ] || limit=$left
  log "$name (limit ${limit} s): $*"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  log "$name: rc $rc after $((SECONDS - t0)) s$([ $rc = 124 ] && echo ' (time limit)')"
  tail -n 5 "$OUT/$name.log" | sed 's/^/    /' | tee -a "$OUT/summary.txt"
  return $rc
}
has() { [[ " $STAGES " == *" $1 "* ]]; }

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi,"
  echo "$(nproc) cores,"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null ||
    echo "no torch in python3"; } > "$OUT/machine.txt" 2>&1
log "machine: $(tr '\n' ' ' < "$OUT/machine.txt")"

if has build; then
  EXTRA_TARGETS=test_dist_nccl stage build "${BUILD_S:-300}" bench/gpu/build.sh || { log "build failed: stop"; exit 1; }
fi
if has nccl; then
  # One GPU: the suite at 1 rank (2 ranks need 2 GPUs: NCCL refuses two ranks on one device).
  stage nccl 120 bash -c 'source build-gpu/env.sh && mpirun --allow-run-as-root --bind-to none -np 1 \
    build-gpu/tests/dist/test_dist_nccl --gtest_brief=1'
fi
if has lora; then
  STEPS=${STEPS:-6} WARMUP=${WARMUP:-2} stage lora_7b $(( 2 * ${TRAIN_S:-150} + 60 )) bench/gpu/run_7b_lora.sh
  cp bench/gpu/results/*.log "$OUT/" 2>/dev/null
  grep -h '^+ ' bench/gpu/results/7b_lora_*.log bench/gpu/results/hf_peft_*.log 2>/dev/null | tee -a "$OUT/summary.txt"
fi
if has sample; then
  N=${N:-512} stage sample_7b "${SAMPLE_S:-180}" bench/gpu/sample_7b.sh
  cp bench/gpu/results/sample_7b/summary.json "$OUT/sample_7b_summary.json" 2>/dev/null
  cp bench/gpu/results/sample_7b_own_prompt/summary.json "$OUT/sample_7b_own_prompt_summary.json" 2>/dev/null
fi
log "done"
grep -h '(target' "$OUT"/*.log 2>/dev/null | tee -a "$OUT/summary.txt"
