#!/bin/sh
# cgprep stopped by a signal is a failed run: nothing of it is left (no .cgprep.tmp staging folder, no
# data.shards_dir nor the parents it made) and it dies of that signal, so a shell sees 128 + N.
#   SIGTERM ~1 s into the run (reading MP-20's CSVs)            -> exit 143
#   SIGHUP once the staging folder holds the tokenizer (sampling) -> exit 129; a SIGINT before it, ignored in a
#   background job of a script (as sh sets it up), stays ignored
# usage: test_cgprep_signal.sh CGPREP SOURCE_DIR WORK_DIR
set -u
CGPREP=$1 S=$2 D=$3
rm -rf "$D"; mkdir -p "$D"
fails=0
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }
pid=
trap 'if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null; fi' EXIT

# start OUT_DIR LOG: cgprep on the whole MP-20 copy, in the background (pid in $pid).
start() {
  "$CGPREP" data.shards_dir="$1" data.train_csv="$S/data/mp20/train.csv.gz" \
    data.val_csv="$S/data/mp20/val.csv.gz" data.test_csv="$S/data/mp20/test.csv.gz" >"$2" 2>&1 &
  pid=$!
}
# wait_for PATH: until PATH exists (0), or cgprep has exited or 60 s have passed (1).
wait_for() {
  i=0
  while [ ! -e "$1" ]; do
    kill -0 "$pid" 2>/dev/null && [ "$i" -lt 600 ] || return 1
    sleep 0.1; i=$((i + 1))
  done
}
# finish WANT_RC LOG SIGNAL_TEXT DESC: cgprep's exit status and last words, and that nothing is left in $D/new.
finish() {
  rc=0; wait "$pid" || rc=$?; pid=
  [ "$rc" = "$1" ] || { bad "$4: exit $rc, want $1; output:"; sed 's/^/    /' "$2" >&2; }
  said="stopped by signal $3 before the shards were written; nothing of this run was kept and $D/new/shards, which"
  grep -qF "$said it made, is removed" "$2" ||
    { bad "$4: no 'stopped by signal $3' error; output:"; sed 's/^/    /' "$2" >&2; }
  [ ! -e "$D/new" ] || { bad "$4: left $(find "$D/new" | tr '\n' ' ')"; rm -rf "$D/new"; }
}

start "$D/new/shards" "$D/term.log"
wait_for "$D/new/shards" || bad "SIGTERM: cgprep never made data.shards_dir"
sleep 1
kill -TERM "$pid"
finish 143 "$D/term.log" "15 (SIGTERM)" "SIGTERM after 1 s"

start "$D/new/shards" "$D/hup.log"
wait_for "$D/new/shards" || bad "SIGINT: cgprep never made data.shards_dir"
kill -INT "$pid"
wait_for "$D/new/shards/.cgprep.tmp/tokenizer.model" || bad "SIGHUP: no staging folder seen (stopped by SIGINT?)"
kill -HUP "$pid"
finish 129 "$D/hup.log" "1 (SIGHUP)" "SIGHUP while sampling"

[ "$fails" -eq 0 ] && echo "cgprep signal checks passed"
[ "$fails" -eq 0 ]
