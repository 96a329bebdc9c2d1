#!/usr/bin/env bash
# Test executables that write files under fixed names (ckpt_roundtrip, cfg_cli.yaml, metrics_test.jsonl, ...) run
# twice at once with one TEST_TMPDIR, as two ctest invocations in one build tree do (two clones on one machine share
# /tmp the same way): both pass, and once they have, the folder is empty. tests/test_util.h gives each process a
# folder of its own in $TEST_TMPDIR and removes it when its tests pass; before, both wrote $TEST_TMPDIR/ckpt_roundtrip
# and failed each other, and left their files behind.
# Usage: test_scratch_folders.sh WORK_DIR TEST_EXE...
set -u
mkdir -p "$1" || exit 1
work=$(mktemp -d "$1/scratch_check.XXXXXX") || exit 1
shift
fail=0
for exe in "$@"; do
  name=$(basename "$exe")
  scratch=$work/$name.tmp
  mkdir "$scratch"
  TEST_TMPDIR=$scratch OMP_NUM_THREADS=1 "$exe" --gtest_brief=1 >"$work/$name.1.log" 2>&1 &
  first=$!
  TEST_TMPDIR=$scratch OMP_NUM_THREADS=1 "$exe" --gtest_brief=1 >"$work/$name.2.log" 2>&1
  rc2=$?
  wait "$first"
  rc1=$?
  for run in 1 2; do
    rc=$rc1
    [ "$run" = 2 ] && rc=$rc2
    if [ "$rc" != 0 ]; then
      echo "$name (run $run of 2 at once) failed, rc $rc:"
      tail -n 30 "$work/$name.$run.log"
      fail=1
    fi
  done
  left=$(ls -A "$scratch")
  if [ -n "$left" ]; then
    echo "$name left in its TEST_TMPDIR ($scratch), after both runs: $(echo $left | head -c 600)"
    fail=1
  fi
done
if [ "$fail" = 0 ]; then
  rm -rf "$work"
else
  echo "logs and scratch kept in $work"
fi
exit "$fail"
