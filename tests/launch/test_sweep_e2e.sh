#!/usr/bin/env bash
# End to end: a real 2 x 2 sweep (lora.r x data.translate) with the built cgprep + cgtrain on the micro config:
# four run folders marked done with metrics, two prepared shard folders, summary.md/.csv and the SVG plot (PART
# grid: the sweep's points run on 2 ranks); then a one-point sweep with sample: true on 1 rank, and the same sweep with
# a larger train.steps, which trains the finished point on as a fresh longer run would (PART sample). Two ctest
# entries, sweep_e2e (PROCESSORS 2) and sweep_e2e_sample (PROCESSORS 1), so that ctest -j2 runs the one-rank half
# beside another test instead of holding both slots with one core idle; each has its own folder.
# usage: test_sweep_e2e.sh SOURCE_DIR BUILD_DIR [grid|sample|all]
set -euo pipefail
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
PART=${3:-all}
case "$PART" in
  grid|sample|all) ;;
  *) echo "test_sweep_e2e.sh: PART $PART is not grid, sample or all" >&2; exit 2;;
esac
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# OMP_WAIT_POLICY=PASSIVE: the policy the tools set for themselves when it is unset (common/omp_env.h; test_omp_env
# tests it); given, the runs do not depend on that.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
cd "$SRC"  # data.train_csv etc. are relative to the repository root
fail() { echo "FAIL: $*" >&2; exit 1; }

if [ "$PART" != sample ]; then
rc=0
"$BUILD/launch/cgsweep" tests/launch/micro_sweep.yaml --out-dir "$OUT" --bin-dir "$BUILD" || rc=$?
if [ "$rc" != 0 ]; then
  for l in "$OUT"/*/logs/*.log; do echo "== $l"; tail -20 "$l"; done
  fail "cgsweep exited $rc"
fi

for p in r2-translate1 r2-translate0 r8-translate1 r8-translate0; do
  [ "$(cat "$OUT/$p/status")" = done ] || fail "$p: status $(cat "$OUT/$p/status" 2>/dev/null)"
  grep -q '"val_loss"' "$OUT/$p/metrics.jsonl" || fail "$p: no val_loss in metrics.jsonl"
  grep -q "^  r: ${p:1:1}  " "$OUT/$p/point.yaml" || fail "$p: point.yaml lacks lora.r"
done
[ "$(ls -d "$OUT"/shards/data-* | grep -vc '\.lock$')" = 2 ] || fail "expected 2 shard folders: $(ls "$OUT/shards")"
[ "$(wc -l <"$OUT/summary.csv")" = 5 ] || fail "summary.csv: $(cat "$OUT/summary.csv")"
# Every row has a numeric best_val_loss (6th column) and status done.
awk -F, 'NR > 1 && ($4 != "done" || $6 !~ /^[0-9]+\.[0-9]+$/) { bad = 1; print "bad row: " $0 } END { exit bad }' \
  "$OUT/summary.csv" || fail "summary.csv rows"
grep -q "Best val loss" "$OUT/summary.md" || fail "summary.md has no best line"
[ "$(grep -c '<polyline' "$OUT/val_loss_vs_rank.svg")" = 2 ] || fail "plot: want one line per translate setting"
[ "$(grep -c '<circle' "$OUT/val_loss_vs_rank.svg")" = 4 ] || fail "plot: want four points"
cat "$OUT/summary.md"
fi
[ "$PART" = grid ] && { echo "sweep end to end (grid): ok"; exit 0; }

# sample: true on one point: train, export (into the point's own adapter/ folder), sample, eval, all real tools.
OUT2="$OUT/with_samples"
# A constant lr, so that a larger train.steps trains the finished point on (below).
{
  printf 'base: %s/tests/launch/micro_base.yaml\nnp: 1\nsample: true\noverrides:\n  parallel.tp: 1\n' "$SRC"
  printf '  sample.num_samples: 4\n  sample.batch_size: 4\n  eval.invariance: false\n  train.schedule: constant\n'
  printf 'grid:\n  lora.r: [2]\n'
} >"$OUT/sample_sweep.yaml"
rc=0
"$BUILD/launch/cgsweep" "$OUT/sample_sweep.yaml" --out-dir "$OUT2" --bin-dir "$BUILD" || rc=$?
if [ "$rc" != 0 ]; then
  for l in "$OUT2"/*/logs/*.log; do echo "== $l"; tail -20 "$l"; done
  fail "cgsweep with sample: true exited $rc"
fi
[ "$(cat "$OUT2/r2/status")" = done ] || fail "sample sweep: status $(cat "$OUT2/r2/status" 2>/dev/null)"
[ -f "$OUT2/r2/adapter/adapter_config.json" ] && [ -f "$OUT2/r2/adapter/tokenizer.model" ] || fail "no adapter"
[ "$(wc -l <"$OUT2/r2/samples/samples.jsonl")" = 4 ] || fail "want 4 samples"
grep -q structural_validity "$OUT2/summary.csv" || fail "summary.csv lacks the eval columns: $(cat "$OUT2/summary.csv")"

# The same sweep with train.steps 4 -> 6: the finished point trains on from its step-4 checkpoint (a constant lr keeps
# the lr of the steps it trained) and exports, samples and evaluates again; its losses are a fresh 6-step run's.
adapter_before=$(sha256sum "$OUT2/r2/adapter/adapter_model.safetensors")
rc=0
"$BUILD/launch/cgsweep" "$OUT/sample_sweep.yaml" train.steps=6 --out-dir "$OUT2" --bin-dir "$BUILD" \
  >"$OUT/longer.log" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
  cat "$OUT/longer.log"; for l in "$OUT2"/*/logs/*.log; do echo "== $l"; tail -20 "$l"; done
  fail "cgsweep with train.steps=6 over the finished sweep exited $rc"
fi
grep -q "is done at train.steps=4; training on to train.steps=6" "$OUT/longer.log" || fail "no train-on line"
for s in export sample eval; do
  grep -q "\[$s\] " "$OUT/longer.log" || fail "$s did not run again: $(cat "$OUT/longer.log")"
done
grep -q "resumed from .*step-4" "$OUT2/r2/logs/train.log" || fail "training did not resume from step 4"
[ "$(cat "$OUT2/r2/status")" = done ] || fail "train on: status $(cat "$OUT2/r2/status")"
grep -Eq "^  steps: 6( |$)" "$OUT2/r2/point.yaml" || fail "point.yaml lacks train.steps 6"
[ "$(sha256sum "$OUT2/r2/adapter/adapter_model.safetensors")" != "$adapter_before" ] ||
  fail "adapter not exported again"
[ "$(wc -l <"$OUT2/r2/samples/samples.jsonl")" = 4 ] || fail "want 4 samples after training on"
mpirun --oversubscribe --bind-to none -np 1 "$BUILD/trainer/cgtrain" "$OUT2/r2/point.yaml" train.run_dir="$OUT/fresh6" \
  >"$OUT/fresh6.log" 2>&1 || { cat "$OUT/fresh6.log"; fail "fresh 6-step cgtrain failed"; }
losses() { grep -o '"step":[0-9]*\|"loss":[^,}]*\|"val_loss":[^,}]*' "$1/metrics.jsonl" | paste -sd' '; }
[ "$(losses "$OUT2/r2" | grep -o '"loss"' | wc -l)" = 6 ] || fail "want 6 step losses: $(losses "$OUT2/r2")"
[ "$(losses "$OUT2/r2")" = "$(losses "$OUT/fresh6")" ] ||
  fail "trained on: $(losses "$OUT2/r2"); fresh 6-step run: $(losses "$OUT/fresh6")"
echo "trained on from step 4 to 6 as a fresh 6-step run: $(losses "$OUT2/r2")"
echo "sweep end to end: ok"
