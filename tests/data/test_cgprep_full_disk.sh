#!/bin/sh
# cgprep on a full disk: a tmpfs with room for the shards and tokenizer.model of a run but not for its
# cgprep_config.yaml too. cgprep fails naming the disk, exit 1, and leaves nothing of the run (no shards beside no
# cgprep_config.yaml, which the next cgprep refused as another tool's files); the same command with room then works.
# Needs root to mount (exit 77, skipped, where it cannot).
# usage: test_cgprep_full_disk.sh CGPREP SOURCE_DIR WORK_DIR
set -u
CGPREP=$1 S=$2 W=$3
# Its files go in a folder of its own made in WORK_DIR (the build's tests/tmp): removed when the checks passed or were
# skipped, kept and named when one failed; the tmpfs is unmounted either way.
mkdir -p "$W" && D=$(mktemp -d "$W/cgprep_full_disk.XXXXXX") && mkdir "$D/tmpfs" || exit 1
trap 'rc=$?; if mountpoint -q "$D/tmpfs"; then umount -l "$D/tmpfs"; fi
  if [ "$rc" = 0 ] || [ "$rc" = 77 ]; then rm -rf "$D"; else echo "the files of the checks are kept in $D" >&2; fi' EXIT
fails=0
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }
prep() {
  "$CGPREP" data.max_rows=40 data.copies=2 data.tokenizer_vocab_size=400 data.train_csv="$S/data/mp20/train.csv.gz" \
    data.val_csv= data.test_csv= data.shards_dir="$1" >"$2" 2>&1
}

# The run's files, in tmpfs pages (4 KiB each), on a disk with room: the same settings write the same bytes.
prep "$D/roomy" "$D/roomy.log" || { cat "$D/roomy.log" >&2; exit 1; }
[ -f "$D/roomy/cgprep_config.yaml" ] || { echo "FAIL: no cgprep_config.yaml in $D/roomy" >&2; exit 1; }
pages=$(find "$D/roomy" -type f ! -name cgprep_config.yaml -printf '%s\n' | awk '{ p += int(($1 + 4095) / 4096) }
  END { print p }')
mount -t tmpfs -o size=$((pages * 4096)) tmpfs "$D/tmpfs" 2>/dev/null ||
  { echo "cannot mount a tmpfs: skipped"; exit 77; }

rc=0; prep "$D/tmpfs/shards" "$D/full.log" || rc=$?
[ "$rc" = 1 ] || bad "full disk: exit $rc, want 1"
grep -qF "cannot write shard $D/tmpfs/shards/.cgprep.tmp/train-00000.h5" "$D/full.log" ||
  bad "full disk: the error does not name the shard"
grep -q "No space left on device (errno 28); the disk is full: free disk space or set data.shards_dir" "$D/full.log" ||
  bad "full disk: the error does not say the disk is full and what to do"
[ ! -e "$D/tmpfs/shards" ] || bad "full disk: left $(find "$D/tmpfs/shards" | tr '\n' ' ')"
[ "$fails" = 0 ] || sed 's/^/    /' "$D/full.log" >&2

# Room made (as a user would free some): the same command completes, cgprep_config.yaml beside the shards.
mount -o remount,size=$(((pages + 64) * 4096)) "$D/tmpfs" || bad "cannot grow the tmpfs"
rc=0; prep "$D/tmpfs/shards" "$D/rerun.log" || rc=$?
[ "$rc" = 0 ] || { bad "rerun with room: exit $rc"; sed 's/^/    /' "$D/rerun.log" >&2; }
# (HDF5 stamps its datasets with the time they were made: the shards' sizes are compared, not their bytes.)
cmp -s "$D/roomy/tokenizer.model" "$D/tmpfs/shards/tokenizer.model" || bad "rerun: tokenizer.model differs"
[ "$(wc -c <"$D/roomy/train-00000.h5")" = "$(wc -c <"$D/tmpfs/shards/train-00000.h5" 2>/dev/null)" ] ||
  bad "rerun: train-00000.h5 is not the size it has on a disk with room"
[ -f "$D/tmpfs/shards/cgprep_config.yaml" ] || bad "rerun: no cgprep_config.yaml"
[ "$fails" = 0 ] || exit 1
echo "ok"
