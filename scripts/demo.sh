#!/usr/bin/env bash
# demo.sh: the README's first command. On a fresh machine: install dependencies, build, then the whole chain on the
# tiny default config, CPU, 2 ranks (118 s and 146 s on 2 idle cores after the build when last timed whole, 2026-12-03;
# on cores shared with other work many times that, the base's progress line giving its ETA: docs/performance.md,
# "End-to-end demo"):
#   cgprep (MP-20 CSV -> HDF5 shards)
#   -> mpirun -np 2 cgtrain, full-parameter (the paper's from-scratch baseline): a tiny LLaMA base that knows the format
#   -> cgexport --merge (that base as a Hugging Face checkpoint, the layout a real LLaMA-2 comes in)
#   -> mpirun -np 2 cgtrain configs/tiny.yaml (tp 2, LoRA on the frozen base) -> cgexport (PEFT adapter)
#   -> mpirun -np 2 cgsample (tp 2; crystals as text + CIF) -> cgeval (validity report)
#   -> cgsample conditioned on test crystals' formulas and space groups -> cgeval (how often they are met)
# Everything lands in runs/demo (DEMO_RUN; removed first unless DEMO_FRESH=0); shards in the config's data.shards_dir.
# Extra arguments are section.key=value overrides passed to every stage (e.g. train.steps=50), except where a stage
# sets that key itself (the base's train.steps is BASE_STEPS).
# SKIP_INSTALL=1 / SKIP_BUILD=1 skip those steps; CONFIG (default configs/tiny.yaml), BUILD_DIR (default build);
# BASE_STEPS (default 800): full-parameter steps of the base.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CONFIG=${CONFIG:-configs/tiny.yaml}
BUILD=${BUILD_DIR:-build}
RUN=${DEMO_RUN:-runs/demo}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
source launch/config_get.sh

t0=$SECONDS
say() { printf '\n== [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
# tool FOLDER NAME: the built tool's path, or stop the demo with a message naming what is missing.
tool() {
  local p="$BUILD/$1/$2"
  if [ ! -x "$p" ]; then
    echo "demo: $p is not built (yet), so the demo stops here. Build it with ./scripts/build.sh (BUILD_DIR=$BUILD)." >&2
    exit 1
  fi
  echo "$p"
}
# loss_line METRICS_JSONL: the run's final train loss and best val loss. A run without validation
# (train.val_every=0) has no val_loss: said so, not a failed grep ending the demo under `set -euo pipefail`.
loss_line() {
  local last best
  last=$(grep -oE '"loss":[[:space:]]*[^,}]*' "$1" | tail -1 | cut -d: -f2 | tr -d ' ') || true
  best=$(grep -oE '"val_loss":[[:space:]]*[0-9.eE+-]+' "$1" | cut -d: -f2 | tr -d ' ' | sort -g | head -1) || true
  echo "  final train loss: ${last:-?}   best val loss: ${best:-none (no validation ran: train.val_every=0?)}"
}
# stage NAME CMD...: run and time one stage.
stage() {
  local name=$1 s=$SECONDS
  shift
  say "$name: $*"
  "$@"
  echo "-- $name took $((SECONDS - s)) s"
}

if [ "${SKIP_INSTALL:-0}" != 1 ]; then say "install"; ./scripts/install.sh; fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then say "build"; ./scripts/build.sh; fi
[ -f "$CONFIG" ] || { echo "demo: $CONFIG not found (it ships with the repository's configs/)" >&2; exit 1; }
[ "${DEMO_FRESH:-1}" = 1 ] && rm -rf "$RUN"
mkdir -p "$RUN"

cg_merge_overrides model.device=cpu parallel.tp=2 sample.out_dir="$RUN/samples" eval.input="$RUN/samples" \
  sample.adapter="$RUN/adapter" "$@"
ov=("${merged[@]}")
shards=$(cg_config_get "$CONFIG" data.shards_dir runs/shards/tiny "${ov[@]}")

prep=$(tool data cgprep) || exit 1
stage "1/8 prepare data" "$prep" "$CONFIG" "${ov[@]}"
tool trainer cgtrain >/dev/null || exit 1
export_bin=$(tool trainer cgexport) || exit 1
cg_merge_overrides "${ov[@]}" train.run_dir="$RUN/base" lora.enabled=false train.steps="${BASE_STEPS:-800}" \
  train.lr=1e-3 train.warmup_steps=20 train.val_every=100 checkpoint.every=0
stage "2/8 train the tiny base from scratch (full-parameter, tp 2)" launch/run.sh --np 2 --bin-dir "$BUILD" cgtrain \
  "$CONFIG" "${merged[@]}"
stage "3/8 export the base as a Hugging Face checkpoint" "$export_bin" "$RUN/base" --out "$RUN/base_hf" --merge
cg_merge_overrides "${ov[@]}" model.hf_dir="$RUN/base_hf"
ov=("${merged[@]}")
cg_merge_overrides "${ov[@]}" train.run_dir="$RUN/lora"
stage "4/8 LoRA fine-tune on the frozen base (tp 2)" launch/run.sh --np 2 --bin-dir "$BUILD" cgtrain "$CONFIG" \
  "${merged[@]}"
stage "5/8 export the PEFT adapter" "$export_bin" "$RUN/lora" --out "$RUN/adapter"
tool sampler cgsample >/dev/null || exit 1
stage "6/8 sample (tp 2)" launch/run.sh --np 2 --bin-dir "$BUILD" cgsample "$CONFIG" "${ov[@]}"
eval_bin=$(tool sampler cgeval) || exit 1
stage "7/8 evaluate" "$eval_bin" "$CONFIG" "${ov[@]}"
cg_merge_overrides "${ov[@]}" sample.out_dir="$RUN/samples_cond" sample.num_samples=32 \
  sample.conditions_from=data.test_csv sample.condition_on=[formula,spacegroup]
stage "8/8 conditional sampling: each sample asks for a test crystal's formula and space group, then evaluate" \
  launch/run.sh --np 2 --bin-dir "$BUILD" cgsample "$CONFIG" "${merged[@]}"
cg_merge_overrides "${ov[@]}" eval.input="$RUN/samples_cond" eval.train_csv= eval.ref_csv= log.level=warn
"$eval_bin" "$CONFIG" "${merged[@]}" >/dev/null

say "done in $((SECONDS - t0)) s; results:"
cat <<MSG
  shards:       $shards
  base:         $RUN/base (run) -> $RUN/base_hf (Hugging Face checkpoint)
  LoRA run:     $RUN/lora   (config.yaml, metrics.jsonl, checkpoints/step-N/)
  adapter:      $RUN/adapter   (PEFT: adapter_model.safetensors + adapter_config.json)
  samples:      $RUN/samples
  eval report:  $RUN/samples/eval
  conditional:  $RUN/samples_cond (eval/report.json: formula and space group as asked)
MSG
[ ! -f "$RUN/lora/metrics.jsonl" ] || loss_line "$RUN/lora/metrics.jsonl"
# Validity rates of the eval report (report.json), without jq.
found=0
for j in "$RUN"/samples/eval/*.json; do
  [ -f "$j" ] || continue
  grep -oE '"([a-z_]*validity|uniqueness|novelty)"[[:space:]]*:[[:space:]]*[0-9.eE+-]+' "$j" | sed 's/"//g; s/^/  /' && found=1
done
[ "$found" = 1 ] || echo "  (no validity fields found in $RUN/samples/eval/*.json)"
grep -oE '"(formula|spacegroup)_accuracy"[[:space:]]*:[[:space:]]*[0-9.eE+-]+' "$RUN/samples_cond/eval/report.json" \
  2>/dev/null | sed 's/"//g; s/^/  conditional /' || true
echo "  root: $ROOT"
