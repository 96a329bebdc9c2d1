# Checks for the launch shell tests, sourced after setting T (scratch folder) and EXPECT_LOG (where each checked
# command's output goes). Counts in n and fails; the caller prints the tally and exits with [ "$fails" -eq 0 ].
fails=0 n=0

ok() { n=$((n + 1)); }
bad() { n=$((n + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
# expect_rc WANT DESC CMD...: run CMD (stdout+stderr to $EXPECT_LOG), check its exit status.
expect_rc() {
  local want=$1 desc=$2 rc=0
  shift 2
  "$@" >"$EXPECT_LOG" 2>&1 || rc=$?
  if [ "$rc" = "$want" ]; then ok; else bad "$desc: exit $rc, want $want; output:"; sed 's/^/    /' "$EXPECT_LOG" >&2; fi
}
# expect_out PATTERN DESC: the last command's output matches the extended regex PATTERN.
expect_out() {
  if grep -qE -- "$1" "$EXPECT_LOG"; then ok; else bad "$2: output lacks /$1/:"; sed 's/^/    /' "$EXPECT_LOG" >&2; fi
}
