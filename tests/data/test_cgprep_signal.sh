#!/bin/sh
# cgprep stopped by a signal is a failed run: nothing of it is left (no .cgprep.tmp staging folder, no
# data.shards_dir nor the parents it made) and it dies of that signal, so a shell sees 128 + N.
#   SIGTERM ~1 s into the run (reading MP-20's CSVs)            -> exit 143
#   SIGHUP once the staging folder holds the tokenizer (sampling) -> exit 129; a SIGINT before it, ignored in a
#   background job of a script (as sh sets it up), stays ignored
# A second signal kills it at once (no cleanup but this): a data.shards_dir it made goes if still empty, with the
# parents it made; a folder that was there before, or holds anything (the staging folder), stays.
#   two SIGINTs (Ctrl-C twice) while reading, into a new folder -> exit 130, no $D/new left (SIGINT set back to its
#   default through python3, as in an interactive shell)
#   two SIGTERMs while reading, into an empty existing one  -> exit 143, the folder and its parent still there
#   SIGHUP + SIGTERM at once while sampling (the first does nothing yet) -> dies of one of them; the new folder
#   stays, holding .cgprep.tmp, and the next run into it clears that and completes
# Its files go in a folder of its own made in WORK_DIR (the build's tests/tmp), so two runs at once (two ctest
# invocations in one build tree) never share a path; removed when every check passed, kept and named when one failed.
# usage: test_cgprep_signal.sh CGPREP SOURCE_DIR WORK_DIR
set -u
CGPREP=$1 S=$2
mkdir -p "$3" && D=$(mktemp -d "$3/cgprep_signal.XXXXXX") || exit 1
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

# finish_fast LOG DESC: cgprep died of SIGINT (130), SIGTERM (143) or SIGHUP (129) by the second signal's fast
# path, before the first one's cleanup said "stopped by signal".
finish_fast() {
  rc=0; wait "$pid" || rc=$?; pid=
  case $rc in 129|130|143) ;; *) bad "$2: exit $rc, want 129, 130 or 143; output:"; sed 's/^/    /' "$1" >&2 ;; esac
  if grep -q "stopped by signal" "$1"; then bad "$2: the first signal's cleanup ran (not the fast path)"; fi
}
# Two signals in a row reach cgprep while it reads the CSVs (about a second), which the first one does not interrupt.
if command -v python3 >/dev/null; then
  python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "$CGPREP" data.shards_dir="$D/new/shards" data.train_csv="$S/data/mp20/train.csv.gz" \
    data.val_csv="$S/data/mp20/val.csv.gz" data.test_csv="$S/data/mp20/test.csv.gz" >"$D/twice.log" 2>&1 &
  pid=$!
  wait_for "$D/new/shards" || bad "two SIGINTs: cgprep never made data.shards_dir"
  kill -INT "$pid"; sleep 0.2; kill -INT "$pid"
  finish_fast "$D/twice.log" "two SIGINTs into a new folder"
  [ "$rc" = 130 ] || bad "two SIGINTs: exit $rc, want 130"
  [ ! -e "$D/new" ] || { bad "two SIGINTs: left $(find "$D/new" | tr '\n' ' ')"; rm -rf "$D/new"; }
fi

mkdir -p "$D/old/shards"
start "$D/old/shards" "$D/twice_old.log"
sleep 0.3
kill -TERM "$pid"; sleep 0.2; kill -TERM "$pid"
finish_fast "$D/twice_old.log" "two SIGTERMs into an existing folder"
[ -d "$D/old/shards" ] || bad "two SIGTERMs removed data.shards_dir, which was there before cgprep"

# Stopped, both signals are pending when it resumes: their handlers run before it does anything else, so the staging
# folder is still there, and the new folder holding it stays.
start "$D/new/shards" "$D/held.log"
wait_for "$D/new/shards/.cgprep.tmp/tokenizer.model" || bad "SIGHUP + SIGTERM: no staging folder seen"
kill -STOP "$pid"; kill -HUP "$pid"; kill -TERM "$pid"; kill -CONT "$pid"
finish_fast "$D/held.log" "SIGHUP + SIGTERM while sampling"
[ -d "$D/new/shards/.cgprep.tmp" ] || bad "SIGHUP + SIGTERM: removed the new folder holding .cgprep.tmp"
# The next run into that folder clears the staging folder left behind and completes.
"$CGPREP" data.shards_dir="$D/new/shards" data.train_csv="$S/data/mp20/train.csv.gz" data.max_rows=30 \
  data.tokenizer_vocab_size=400 data.val_csv= data.test_csv= >"$D/after.log" 2>&1 ||
  { bad "the run after a kill that left .cgprep.tmp failed; output:"; sed 's/^/    /' "$D/after.log" >&2; }
[ ! -e "$D/new/shards/.cgprep.tmp" ] && [ -f "$D/new/shards/train-00000.h5" ] &&
  [ -f "$D/new/shards/cgprep_config.yaml" ] || bad "the run after a kill left $(ls -A "$D/new/shards" | tr '\n' ' ')"
rm -rf "$D/new"

if [ "$fails" -eq 0 ]; then
  rm -rf "$D"
  echo "cgprep signal checks passed"
else
  echo "$fails checks failed: the logs are kept in $D" >&2
fi
[ "$fails" -eq 0 ]
