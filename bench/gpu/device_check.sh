#!/usr/bin/env bash
# Every GPU check of issue 8 as one command, sized for a short lease of one GPU (~12 minutes after the machine
# starts): build, the NCCL suite at 1 rank, GPU kernel profiles of a 7B training step and of sampling, 7B-shaped
# LoRA throughput (q,v then all-linear) with the HF + PEFT
# baseline, 7B sampling, the tiny config trained and resumed on the GPU. Each stage has its own time limit and a
# failed stage does not stop the next. Every log lands in LOGS (bench/gpu/results/logs), packed after each stage into
# $OUT/logs.tar.gz beside $OUT/summary.txt (the device tool brings back only a few files from $OUT).
#
# Prepare here (network): bench/gpu/fetch_debs.sh  and  ./scripts/build.sh (third_party/ with LLaMA-2's tokenizer).
# Then, through the device tool:
#   run(command="bench/gpu/device_check.sh", carry=["bench/gpu/debs", "third_party"], timeout_s=600)
# Env: BUILD_S (300), TRAIN_S (150: cgtrain's step, both target sets), HF_S (150: HF + PEFT, both), SAMPLE_S (150:
#      shared prompt on, then off), E2E_S (90: tiny config trained and resumed) stage limits in seconds, each cut
#      to what is left of TOTAL_S (560: the device tool stops a command at 600 s; a stage with under 30 s left
#      is skipped and says how to run it next), PROFILE_S (120 each: the kernel profiles); STAGES to pick a subset
#      (default "build nccl profile lora hf sample graphs long e2e mb16"; also "alloc": q,v with expandable
#      allocator segments, "ops": sampling with libtorch's operators instead of cgtrain's decoding kernels; run in the
#      order "build nccl profile lora alloc hf long sample graphs ops e2e mb16": "long", the issue's measurement,
#      before the other sampling stages; a second call on a warm machine can skip "build": build-gpu/ stays). LONG_S
#      (120: each of the long stage's two runs). The sampling stages take N, BS (lowered to what fits the GPU's
#      memory: bench/gpu/sample_7b.sh), SAMPLE_SHARE and EXTRA; each logs its exact command (env settings included),
#      and a failed one its failing command as its log's last line.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench/gpu/results}
LOGS=${LOGS:-bench/gpu/results/logs}
RESULTS=${RESULTS:-bench/gpu/results}  # sample_7b.sh's output folders
mkdir -p "$OUT" "$LOGS"
pack() { [ "$(realpath "$LOGS")" = "$(realpath "$OUT")" ] || tar czf "$OUT/logs.tar.gz" -C "$LOGS" . 2>/dev/null; }
STAGES=${STAGES:-build nccl profile lora hf sample graphs long e2e mb16}
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
  timeout --kill-after=10 "$limit" "$@" > "$LOGS/$name.log" 2>&1
  local rc=$?
  log "$name: rc $rc after $((SECONDS - t0)) s$([ $rc = 124 ] && echo ' (time limit)')"
  tail -n 5 "$LOGS/$name.log" | sed 's/^/    /' | tee -a "$OUT/summary.txt"
  pack
  return $rc
}
has() { [[ " $STAGES " == *" $1 "* ]]; }

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi,"
  echo "$(nproc) cores,"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null ||
    echo "no torch in python3"; } > "$LOGS/machine.txt" 2>&1
log "machine: $(tr '\n' ' ' < "$LOGS/machine.txt")"

if has build; then
  # A target that does not compile does not stop the others: the stages below run when their binary was built.
  TARGETS=${BUILD_TARGETS:-bench_train_step cgsample test_dist_nccl test_model_llama test_model_attention test_lora_linear cgtrain cgprep cgtok} \
    stage build "${BUILD_S:-300}" bench/gpu/build.sh
  grep -E '^(built into|torch |  loads:|warning|note)' "$LOGS/build.log" | tee -a "$OUT/summary.txt"
  grep -m 20 -E 'error|Error' "$LOGS/build.log" | tee -a "$OUT/summary.txt"
  [ -f build-gpu/env.sh ] || { log "build failed before env.sh: stop"; pack; exit 1; }
fi
# The binaries' folder, from the env.sh that bench/gpu/build.sh wrote (bench/gpu/rehearse_cpu.sh points it at build/).
export ENVSH=${BUILD_DIR:-build-gpu}/env.sh
CGB=$( . "$ENVSH" 2>/dev/null && echo "$CG_BUILD")
bin() { [ -n "$CGB" ] && [ -x "$CGB/$1" ] || { log "skip: $CGB/$1 was not built"; return 1; }; }
if has nccl && bin tests/dist/test_dist_nccl; then
  # One GPU: the suite at 1 rank (2 ranks need 2 GPUs: NCCL refuses two ranks on one device).
  stage nccl 60 bash -c 'source "$ENVSH" && mpirun --allow-run-as-root --bind-to none -np 1 \
    "$CG_BUILD/tests/dist/test_dist_nccl" --gtest_brief=1'
fi
if has nccl; then
  # Suites with CUDA halves (torch's fused RMSNorm against HF's formula, the RoPE and decode attention kernels
  # against their references, LoRA's fused dropout), those of them that were built: they run on the GPU here.
  suites=""
  for t in tests/model/test_model_llama tests/model/test_model_attention tests/lora/test_lora_linear; do
    [ -x "$CGB/$t" ] && suites="$suites $t"
  done
  [ -n "$suites" ] && SUITES=$suites stage model_tests 90 bash -c 'source "$ENVSH" && rc=0
    for t in $SUITES; do echo "== $t"; "$CG_BUILD/$t" --gtest_brief=1 || rc=1; done; exit $rc'
fi
if has profile; then
  # Where the time goes, by GPU kernel (Kineto; common/kernel_profile.h): 2 training steps of each target set, and a
  # short generation with and without the shared prompt.
  bin bench/bench_train_step && SIDES=cg TAG=_kernels STEPS=3 WARMUP=2 BENCH_FLAGS="--kernels 2" \
    stage profile_train "${PROFILE_S:-120}" bench/gpu/run_7b_lora.sh
  cp bench/gpu/results/7b_lora_*_kernels.log "$LOGS/" 2>/dev/null
  [ "${PROFILE_SAMPLE:-1}" = 1 ] && bin sampler/cgsample && CG_KERNEL_PROFILE=1 TAG=_kernels N=256 BS=256 \
    stage profile_sample "${PROFILE_S:-120}" bench/gpu/sample_7b.sh
fi
if has lora && bin bench/bench_train_step; then
  SIDES=cg STEPS=${STEPS:-6} WARMUP=${WARMUP:-2} stage lora_7b "${TRAIN_S:-150}" bench/gpu/run_7b_lora.sh
  grep -h '^+ ' bench/gpu/results/7b_lora_*.log 2>/dev/null | tee -a "$OUT/summary.txt"
fi
if has alloc && bin bench/bench_train_step; then
  # torch's caching allocator with expandable segments (fewer cudaMalloc/cudaFree when block sizes shift), q,v only.
  PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True SIDES=cg LORA_SETS=q_proj,v_proj TAG=_expseg \
    STEPS=${STEPS:-6} WARMUP=${WARMUP:-2} stage lora_7b_expseg "${TRAIN_S:-150}" bench/gpu/run_7b_lora.sh
  grep -h '^7B LoRA' "$LOGS/lora_7b_expseg.log" | tee -a "$OUT/summary.txt"
fi
if has hf; then
  SIDES=hf STEPS=${STEPS:-6} WARMUP=${WARMUP:-2} stage hf_peft "${HF_S:-150}" bench/gpu/run_7b_lora.sh
  grep -h '^+ ' bench/gpu/results/hf_peft_*.log 2>/dev/null | tee -a "$OUT/summary.txt"
fi
cp bench/gpu/results/7b_lora_*.log bench/gpu/results/hf_peft_*.log "$LOGS/" 2>/dev/null
# The sampling stages: a failed one (its log's last line names the command that failed) does not stop the next, and
# each one's result lines go to the summary. "long" first: the issue's measurement, crystals of a trained model's
# length.
sample_stage() {  # sample_stage NAME LIMIT_S ENV...: bench/gpu/sample_7b.sh with these settings, results to the summary
  local name=$1 limit=$2 rc; shift 2
  stage "$name" "$limit" env RESULTS="$RESULTS" "$@" bench/gpu/sample_7b.sh
  rc=$?
  grep -h -E '^(7B sampling|note:|  [0-9]+ of [0-9]+ parsed)' "$LOGS/$name.log" \
    | sed 's/^/    /' | tee -a "$OUT/summary.txt"
  local d
  for d in "$RESULTS"/sample_7b*/; do
    [ -f "$d/summary.json" ] && cp "$d/summary.json" "$LOGS/$(basename "$d").json"
  done
  return $rc
}
if has long && bin sampler/cgsample; then
  # Crystals of a trained model's length (~200 tokens) from random weights, through the path a trained model takes
  # (the grammar, only the allowed columns to the host): random weights end a crystal after ~60 tokens, so EOS is
  # held back for the first 160 (sample.min_new_tokens); each then ends at its next EOS, or is cut at 300 (cut ones
  # do not parse, so crystals/s counts only those that ended; tokens/sample and the cut count are printed). With CUDA
  # graphs, then eagerly.
  for g in true false; do
    sample_stage sample_7b_long_graphs_$g "${LONG_S:-120}" N="${N:-2048}" BS="${BS:-512}" MAX_NEW=300 SHARE=true \
      TAG=_long_graphs_$g EXTRA="sample.min_new_tokens=160 sample.cuda_graphs=$g ${EXTRA:-}"
  done
fi
if has sample && bin sampler/cgsample; then
  sample_stage sample_7b "${SAMPLE_S:-150}" N="${N:-512}" BS="${BS:-256}" SHARE="${SAMPLE_SHARE:-${SHARE:-both}}" \
    EXTRA="${EXTRA:-}"
fi
if has graphs && bin sampler/cgsample; then
  # The decode step as CUDA graphs (sample.cuda_graphs; captured per span bucket, each checked against the eager
  # step: a failure says so in the log and decoding goes on eagerly), shared prompt, batch 512.
  sample_stage sample_7b_graphs "${SAMPLE_S:-150}" N="${N:-4096}" BS="${BS:-512}" SHARE=true TAG=_graphs \
    EXTRA="sample.cuda_graphs=true ${EXTRA:-}"
  grep -h 'sample.cuda_graphs:' "$LOGS/sample_7b_graphs.log" | sed 's/^/    /' | tee -a "$OUT/summary.txt"
fi
if has ops && bin sampler/cgsample; then
  # The same as "sample" (shared prompt, batch 512) with libtorch's operators for the decode attention instead of
  # cgtrain's decoding kernels (sample.decode_kernels=off): the kernels' gain.
  sample_stage sample_7b_ops "${SAMPLE_S:-150}" N="${N:-4096}" BS="${BS:-512}" SHARE=true TAG=_ops \
    EXTRA="sample.decode_kernels=off ${EXTRA:-}"
fi
if has e2e && bin trainer/cgtrain && bin data/cgprep; then
  # The whole trainer on the GPU: the tiny config in bf16 with the NCCL backend, saved at step 20, then resumed.
  # E2E_OVERRIDES (they replace the stage's own settings) let bench/gpu/rehearse_cpu.sh run it on a CPU.
  export E2E_OVERRIDES=${E2E_OVERRIDES:-}
  stage e2e "${E2E_S:-90}" bash -c 'source "$ENVSH" && set -e && d=/tmp/cg_e2e && rm -rf $d
    "$CG_BUILD/data/cgprep" configs/tiny.yaml data.shards_dir=$d/shards data.max_rows=2000 log.level=warn
    o="model.device=cuda model.dtype=bf16 parallel.tp=1 parallel.backend=$CG_BACKEND data.shards_dir=$d/shards
       train.run_dir=$d/run checkpoint.every=20 train.val_every=20 train.val_samples=64 log.every=10 $E2E_OVERRIDES"
    source launch/config_get.sh && cg_merge_overrides $o && o="${merged[*]}"  # the tools refuse a key given twice
    "$CG_BUILD/trainer/cgtrain" configs/tiny.yaml $o train.steps=20
    "$CG_BUILD/trainer/cgtrain" configs/tiny.yaml $o train.steps=40
    ls $d/run/checkpoints; tail -n 3 $d/run/metrics.jsonl'
fi
if has mb16 && bin bench/bench_train_step; then
  # A variant, time permitting: micro batch 16 (the HF + PEFT comparison above is at micro batch 8 on both sides).
  SIDES=cg MB=16 TAG=_mb16 STEPS=${STEPS:-6} WARMUP=${WARMUP:-2} stage lora_7b_mb16 "${TRAIN_S:-150}" \
    bench/gpu/run_7b_lora.sh
  cp bench/gpu/results/7b_lora_*_mb16.log "$LOGS/" 2>/dev/null
fi
log "done"
pack
grep -h -E '(target|tokens/s)' "$LOGS"/*.log 2>/dev/null | grep -v '^+' | tee -a "$OUT/summary.txt"
