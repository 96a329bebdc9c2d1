#!/bin/sh
# cgeval on a full disk: eval.out on a small tmpfs holding an earlier report, filled so that the new items.jsonl does
# not fit. cgeval fails (exit 1) naming the file, the disk and eval.out; the earlier report.json, report.md and
# items.jsonl stay byte-identical, no temporary file is left; once there is room the same command writes the report.
# Needs root to mount (exit 77, skipped, where it cannot).
# usage: test_cgeval_full_disk.sh CGEVAL SOURCE_DIR WORK_DIR
set -u
CGEVAL=$1 S=$2 W=$3
# Its files go in a folder of its own made in WORK_DIR (the build's tests/tmp): removed when the checks passed or were
# skipped, kept and named when one failed; the tmpfs is unmounted either way.
mkdir -p "$W" && D=$(mktemp -d "$W/cgeval_full_disk.XXXXXX") && mkdir "$D/tmpfs" || exit 1
trap 'rc=$?; if mountpoint -q "$D/tmpfs"; then umount -l "$D/tmpfs"; fi
  if [ "$rc" = 0 ] || [ "$rc" = 77 ]; then rm -rf "$D"; else echo "the files of the checks are kept in $D" >&2; fi' EXIT
fails=0
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }
# eval N OUT LOG: cgeval of the first N rows of MP-20's test split (real crystals), no novelty or distribution
# reference (fast).
evaluate() {
  "$CGEVAL" eval.input="$S/data/mp20/test.csv.gz" eval.max_rows="$1" eval.train_csv= eval.ref_csv= \
    eval.spacegroups=false eval.out="$2" >"$3" 2>&1
}
mount -t tmpfs -o size=$((256 * 1024)) tmpfs "$D/tmpfs" 2>/dev/null ||
  { echo "cannot mount a tmpfs: skipped"; exit 77; }

evaluate 5 "$D/tmpfs/eval" "$D/first.log" || { cat "$D/first.log" >&2; exit 1; }
sums() { (cd "$D/tmpfs/eval" && ls -A | sort | while read -r f; do echo "$f $(cksum <"$f")"; done); }
before=$(sums)
# All but a page of the tmpfs taken: 400 rows' items.jsonl does not fit.
dd if=/dev/zero of="$D/tmpfs/fill" bs=4096 count=$((256 / 4 - 1)) 2>/dev/null
rc=0; evaluate 400 "$D/tmpfs/eval" "$D/full.log" || rc=$?
[ "$rc" = 1 ] || bad "full disk: exit $rc, want 1"
grep -q "cannot write $D/tmpfs/eval/[a-z.]*\.tmp: No space left on device (errno 28); the disk is full: free disk" \
  "$D/full.log" || bad "full disk: the error does not name the file and the disk"
grep -qF "set eval.out to another folder (an earlier report in $D/tmpfs/eval is kept as it was)" "$D/full.log" ||
  bad "full disk: the error does not say what to change and what was kept"
[ "$(sums)" = "$before" ] || bad "full disk: the earlier report changed: $(sums)"
[ "$fails" = 0 ] || sed 's/^/    /' "$D/full.log" >&2

rm "$D/tmpfs/fill"
rc=0; evaluate 400 "$D/tmpfs/eval" "$D/rerun.log" || rc=$?
[ "$rc" = 0 ] || { bad "rerun with room: exit $rc"; sed 's/^/    /' "$D/rerun.log" >&2; }
[ "$(ls -A "$D/tmpfs/eval" | sort | tr '\n' ' ')" = "items.jsonl report.json report.md " ] ||
  bad "rerun: eval.out holds $(ls -A "$D/tmpfs/eval" | tr '\n' ' ')"
[ "$(wc -l <"$D/tmpfs/eval/items.jsonl")" = 400 ] || bad "rerun: items.jsonl is not 400 lines"
[ "$fails" = 0 ] || exit 1
echo "ok"
