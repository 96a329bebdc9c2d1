#!/bin/bash
# cgprep into a folder that already holds something, one check a ctest test:
#   rerun      a folder of shards made with other settings (data.copies 1): replaced, with a warning naming the change
#   model_dir  a model folder (config.json beside tokenizer.model): refused before cgprep writes anything, so the
#              folder's tokenizer.model is unchanged
# Its files go in a folder of its own made in WORK_DIR (the build's tests/tmp; default $TMPDIR or /tmp): removed when
# every check passed, kept and named when one failed.
# usage: test_cgprep_rerun.sh rerun|model_dir CGPREP SOURCE_DIR [WORK_DIR]
set -u
check=$1 cgprep=$2 src=$3 work=${4:-${TMPDIR:-/tmp}}
mkdir -p "$work" && T=$(mktemp -d "$work/cgprep_$check.XXXXXX") || exit 1
trap 'if [ $? -eq 0 ]; then rm -rf "$T"; else echo "the files of the checks are kept in $T"; fi' EXIT
prep() {  # cgprep's output goes to $T/log; its overrides after the shared ones
  "$cgprep" data.max_rows=30 data.tokenizer_vocab_size=400 data.train_csv="$src/data/mp20/train.csv.gz" data.val_csv= \
    data.test_csv= "$@" >"$T/log" 2>&1
}

case $check in
  rerun)
    prep data.shards_dir="$T/shards" data.copies=1 || { echo "the first cgprep failed:"; cat "$T/log"; exit 1; }
    prep data.shards_dir="$T/shards" data.copies=2 ||
      { echo "cgprep on shards of data.copies 1 failed:"; cat "$T/log"; exit 1; }
    grep -qF "holds shards made with other settings (data.copies 1 -> 2)" "$T/log" ||
      { echo "cgprep replaced shards of data.copies 1 without a warning naming the change:"; cat "$T/log"; exit 1; }
    ;;
  model_dir)
    mkdir "$T/model" && echo "{}" >"$T/model/config.json" && echo "the model's own tokenizer" >"$T/tokenizer.model" &&
      cp "$T/tokenizer.model" "$T/model/tokenizer.model" || exit 1
    if prep data.shards_dir="$T/model"; then echo "cgprep wrote into a model folder:"; cat "$T/log"; exit 1; fi
    grep -qF "holds config.json: it is a model, adapter or run folder" "$T/log" ||
      { echo "cgprep refused a model folder without saying it is one:"; cat "$T/log"; exit 1; }
    cmp -s "$T/tokenizer.model" "$T/model/tokenizer.model" ||
      { echo "cgprep changed the model folder's tokenizer.model"; exit 1; }
    ;;
  *)
    echo "the first argument is the check, rerun or model_dir, not '$check'"
    exit 2
    ;;
esac
exit 0
