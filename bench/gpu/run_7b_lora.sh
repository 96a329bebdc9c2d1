#!/usr/bin/env bash
# 7B-shaped LoRA training throughput on one GPU (after bench/gpu/build.sh): random bf16 base weights, seq_len 512,
# LoRA r 8 on q_proj,v_proj and on all-linear; cgtrain's own train step (bench_train_step), tokens/s and MFU.
#   bench/gpu/run_7b_lora.sh                 MB=8 STEPS=10 PEAK_TFLOPS=790 (MFU denominator; H100 SXM spec: 989)
#   EXTRA="key=value ...": overrides that replace the script's own settings (bench/gpu/rehearse_cpu.sh runs this
#   script on a CPU that way).
#   SIDES="cg hf" (default) runs cgtrain's step then the HF + PEFT baseline; SIDES=cg or SIDES=hf runs one of them.
#   LORA_SETS ("q_proj,v_proj all-linear"): the target sets, each a lora.targets list without brackets.
#   TAG names a variant's logs (7b_lora_<targets>$TAG.log), e.g. TAG=_mb16 MB=16.
#   BENCH_FLAGS are appended to bench_train_step's own flags, e.g. BENCH_FLAGS="--kernels 2" (GPU kernel profile).
#   BACKEND (default: CG_BACKEND from build-gpu/env.sh, nccl when the build has it).
# Results: one line per setting here, and bench/gpu/results/7b_lora_*.log with every step and the RESULT json.
set -euo pipefail
cd "$(dirname "$0")/../.."
source "${BUILD_DIR:-build-gpu}/env.sh"
source launch/config_get.sh  # cg_merge_overrides
MB=${MB:-8}; STEPS=${STEPS:-10}; WARMUP=${WARMUP:-3}; PEAK_TFLOPS=${PEAK_TFLOPS:-790}
out=bench/gpu/results; mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt" || true
SIDES=${SIDES:-cg hf}
BACKEND=${BACKEND:-$CG_BACKEND}
common=(model.flavor=7b model.device=cuda model.dtype=bf16 "train.micro_batch=$MB" train.seq_len=512
        lora.r=8 lora.alpha=16 lora.dropout=0.05 train.lr=1e-4 train.clip_grad_norm=1.0
        "parallel.backend=$BACKEND" log.level=warn)
read -r -a extra <<< "${EXTRA:-}"
# run LOG CMD...: the exact command line first (both sides' are part of the result), then its output, into LOG.
run() { local log=$1; shift; { printf '+'; printf ' %q' "$@"; echo; } | tee "$log"; "$@" | tee -a "$log"; }
LORA_SETS=${LORA_SETS:-q_proj,v_proj all-linear}
[[ " $SIDES " == *" cg "* ]] && for targets in $LORA_SETS; do
  log="$out/7b_lora_${targets//,/_}${TAG:-}.log"
  # EXTRA replaces a setting of the script's own (the tools refuse a key given twice).
  cg_merge_overrides "${common[@]}" "lora.targets=[$targets]" ${extra[@]+"${extra[@]}"}
  run "$log" "$CG_BUILD/bench/bench_train_step" "${merged[@]}" \
    --steps "$STEPS" --warmup "$WARMUP" --peak-tflops "$PEAK_TFLOPS" --breakdown ${BENCH_FLAGS:-}
  python3 - "$log" "$targets" <<'PY'
import json, sys
r = json.loads([l for l in open(sys.argv[1]) if l.startswith("RESULT ")][-1][7:])
print(f"7B LoRA r 8 on {sys.argv[2]}: {r['tokens_per_s']:.0f} tokens/s, {r['achieved_tflops']:.0f} TFLOP/s, "
      f"MFU {100 * r['mfu']:.1f}% of {r['peak_tflops']:.0f} TFLOP/s (targets: MFU >= 50%, ~14.5k tokens/s)")
PY
done

# Hugging Face transformers + PEFT on the same GPU and settings (skipped when they are not installed).
if [[ " $SIDES " != *" hf "* ]]; then
  :
elif python3 -c 'import transformers, peft' 2>/dev/null; then
  for targets in $LORA_SETS; do
    log="$out/hf_peft_${targets//,/_}.log"
    run "$log" python3 bench/gpu/hf_peft_baseline.py --targets "$targets" --micro-batch "$MB" --steps "$STEPS" \
      --warmup "$WARMUP" --peak-tflops "$PEAK_TFLOPS"
    [ -f "$out/7b_lora_${targets//,/_}.log" ] && python3 - "$out/7b_lora_${targets//,/_}.log" "$log" "$targets" <<'PY'
import json, sys
res = [json.loads([l for l in open(f) if l.startswith("RESULT ")][-1][7:]) for f in sys.argv[1:3]]
print(f"{sys.argv[3]}: cgtrain {res[0]['tokens_per_s']:.0f} vs HF+PEFT {res[1]['tokens_per_s']:.0f} tokens/s = "
      f"{res[0]['tokens_per_s'] / res[1]['tokens_per_s']:.2f}x (target >= 1.3x)")
PY
  done
else
  echo "transformers/peft not installed: skipping the HF+PEFT baseline (see bench/gpu/hf_peft_baseline.py)"
fi
