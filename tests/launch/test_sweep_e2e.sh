#!/usr/bin/env bash
# End to end: a real 2 x 2 sweep (lora.r x data.translate) with the built cgprep + cgtrain on the micro config:
# four run folders marked done with metrics, two prepared shard folders, summary.md/.csv and the SVG plot (PART
# grid: the sweep's points run on 2 ranks); then a one-point sweep with sample: true on 1 rank (PART sample). Two ctest
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
printf 'base: %s/tests/launch/micro_base.yaml\nnp: 1\nsample: true\noverrides:\n  parallel.tp: 1\n  sample.num_samples: 4\n  sample.batch_size: 4\n  eval.invariance: false\ngrid:\n  lora.r: [2]\n' \
  "$SRC" >"$OUT/sample_sweep.yaml"
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
echo "sweep end to end: ok"
