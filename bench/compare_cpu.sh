#!/usr/bin/env bash
# Side-by-side CPU training throughput: the same tiny LLaMA-2 + LoRA step in plain PyTorch from Python
# (bench/python/train_llama.py, Debian's python3-torch) and in cgtrain (build/bench/bench_train_step), with the same
# shapes, batch, LoRA, AdamW, fp32 and thread count. Each side runs REPEATS times (alternating); the best step wins.
#   bench/compare_cpu.sh                      defaults below
#   THREADS=1 TARGETS=all-linear bench/compare_cpu.sh
# PyTorch runs twice per repeat: with the libraries' default waits and with what cgtrain sets (OMP_WAIT_POLICY=PASSIVE,
# OPENBLAS_THREAD_TIMEOUT=4).
# Needs: bench/python/setup.sh (python3-torch) and a build with the bench_train_step target (BUILD_DIR, default build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
THREADS=${THREADS:-2}
MB=${MB:-8}
SEQ=${SEQ:-512}
R=${R:-8}
TARGETS=${TARGETS:-q_proj,v_proj}   # comma list or all-linear
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-2}
REPEATS=${REPEATS:-3}
PY=/usr/bin/python3

bin="$BUILD/bench/bench_train_step"
[ -x "$bin" ] || { echo "missing $bin: cmake --build $BUILD --target bench_train_step" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "no torch for $PY: run bench/python/setup.sh" >&2; exit 1; }

cores=$(nproc --all)
# One thread count for every library on both sides (OpenMP, OpenBLAS's own pool, MKL if present).
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
cg_args=(model.flavor=tiny model.device=cpu model.dtype=fp32 "train.micro_batch=$MB" "train.seq_len=$SEQ"
         "lora.r=$R" lora.alpha=32 lora.dropout=0.05 "lora.targets=[$TARGETS]"
         train.lr=1e-4 train.weight_decay=0 train.clip_grad_norm=1.0 "train.threads=$THREADS")
py_args=(--flavor tiny --micro-batch "$MB" --seq-len "$SEQ" --r "$R" --alpha 32 --dropout 0.05 --targets "$TARGETS"
         --lr 1e-4 --clip 1.0 --threads "$THREADS")

best() { sed -n 's/^RESULT //p' | $PY -c 'import json,sys; print(json.loads(sys.stdin.read())["tokens_per_s"])'; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $cores cores; $(date -u +%F\ %H:%M) UTC"
echo "shapes: tiny flavor, micro_batch $MB x seq_len $SEQ, LoRA r $R on $TARGETS, fp32, AdamW, $THREADS threads"
# cgtrain's tools set OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=4 before libgomp and OpenBLAS load when
# unset (common/omp_env.h), which matters whenever threads > 1. PyTorch is measured both as a user gets it (the
# libraries' defaults) and with those same settings, so the comparison shows what is the environment and what the code.
unset OMP_WAIT_POLICY OPENBLAS_THREAD_TIMEOUT
py_best=0; pyp_best=0; cg_best=0
for i in $(seq "$REPEATS"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  p=$($PY bench/python/train_llama.py "${py_args[@]}" --steps "$STEPS" --warmup "$WARMUP" | best)
  pp=$(OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4 \
       $PY bench/python/train_llama.py "${py_args[@]}" --steps "$STEPS" --warmup "$WARMUP" | best)
  c=$("$bin" "${cg_args[@]}" --steps "$STEPS" --warmup "$WARMUP" | best)
  printf 'run %d (load %s): pytorch %8.0f   pytorch+PASSIVE %8.0f   cgtrain %8.0f tokens/s\n' "$i" "$load" "$p" "$pp" "$c"
  py_best=$($PY -c "print(max($py_best, $p))"); pyp_best=$($PY -c "print(max($pyp_best, $pp))")
  cg_best=$($PY -c "print(max($cg_best, $c))")
done
tv=$($PY -c 'import torch; print(torch.__version__)')
printf '\n%-50s %12s\n' "side (best run)" "tokens/s"
printf '%-50s %12.0f\n' "PyTorch $tv (Python), default OpenMP policy" "$py_best"
printf '%-50s %12.0f\n' "PyTorch $tv (Python), cgtrain's OpenMP/OpenBLAS waits" "$pyp_best"
printf '%-50s %12.0f\n' "cgtrain (C++)" "$cg_best"
printf 'cgtrain / PyTorch = %.2fx (vs PyTorch with PASSIVE: %.2fx)\n' "$($PY -c "print($cg_best / $py_best)")" \
  "$($PY -c "print($cg_best / $pyp_best)")"
