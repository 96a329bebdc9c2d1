#!/usr/bin/env bash
# tests/scripts/fixture_dir.sh as ctest runs it, in a small test project of its own (a CTestTestfile.cmake written
# here): a fixture folder that three tests use, one started by ctest directly, one through an `env` prefix and one
# through a launcher that forks (a wrapper script, as a test launcher may be), so that the tests' parent is not ctest.
#   two ctest invocations at once in the project's folder -> both pass; each one's tests find one folder, its own,
#                                                           holding its own files alone; none is left
#   ctest -T memcheck (valgrind in front of each test)   -> passes, none left (skipped where valgrind is missing)
#   a test that fails, run through the launcher          -> its ctest fails; the folder is kept, with the test's mark,
#                                                           and the test's output names it
#   fixture_dir.sh away from any ctest                   -> refused, naming CG_FIXTURE_RUN; with it set, the folder
#                                                           is BASE.<its value>
# The folder used to be named for the tests' parent process: through a launcher that was the launcher, whose folder
# the setup had not made.
# usage: test_fixture_dir.sh CTEST FIXTURE_DIR_SH WORK_DIR
set -u
ctest=$1 fixture_dir=$2
mkdir -p "$3" && work=$(mktemp -d "$3/fixture_dir_check.XXXXXX") || exit 1
proj=$work/project
mkdir -p "$proj"

# What each test does in the folder: add its run's $TOKEN to the file tokens there and note the folder in
# $work/dirs.$TOKEN; wait (up to 60 s) until the test of the same name in each of $RUNS runs has got as far; then the
# folder must hold this run's token alone. With FAIL_IN=<test name>, that test then fails.
cat >"$work/use.sh" <<'EOF'
name=$1 dir=$2 work=$3
echo "$TOKEN" >>"$dir/tokens" && echo "$dir" >>"$work/dirs.$TOKEN" && touch "$work/at.$name.$TOKEN" || exit 1
for _ in $(seq 600); do
  [ "$(ls "$work" | grep -c "^at\.$name\.")" -ge "$RUNS" ] && break
  sleep 0.1
done
tokens=$(sort -u "$dir/tokens" | tr '\n' ' ')
[ "$tokens" = "$TOKEN " ] || { echo "$dir holds the files of runs $tokens, not of run $TOKEN alone"; exit 1; }
[ "${FAIL_IN:-}" != "$name" ] || { echo "$name fails, as FAIL_IN asks"; exit 1; }
EOF
printf '"$@"\nexit $?\n' >"$work/launcher.sh"  # "$@" not last: sh forks for it

fd="bash $fixture_dir $work/fx"
use="bash $work/use.sh"
cat >"$proj/CTestTestfile.cmake" <<EOF
add_test(fx_setup $fd setup)
set_tests_properties(fx_setup PROPERTIES FIXTURES_SETUP fx)
add_test(direct $fd run $use direct @DIR@ $work)
add_test(env_prefix env CG_SOME_SETTING=1 $fd run $use env_prefix @DIR@ $work)
add_test(launcher sh $work/launcher.sh $fd run $use launcher @DIR@ $work)
set_tests_properties(direct env_prefix launcher PROPERTIES FIXTURES_REQUIRED fx)
add_test(fx_cleanup $fd cleanup)
set_tests_properties(fx_cleanup PROPERTIES FIXTURES_CLEANUP fx)
EOF

fail=0
failed() {
  echo "$1"
  shift
  for log in "$@"; do echo "--- $log" && tail -n 40 "$log"; done
  fail=1
}
# left: the fixture folders and marks in $work.
left() { (cd "$work" && compgen -G 'fx.*' | tr '\n' ' '); }

# Two ctest invocations at once.
(cd "$proj" && TOKEN=a RUNS=2 "$ctest" --output-on-failure >"$work/a.log" 2>&1) &
first=$!
(cd "$proj" && TOKEN=b RUNS=2 "$ctest" --output-on-failure >"$work/b.log" 2>&1)
rc_b=$?
wait "$first"
rc_a=$?
[ "$rc_a" = 0 ] && [ "$rc_b" = 0 ] || failed "two ctest invocations at once: exit $rc_a and $rc_b" "$work/a.log" \
  "$work/b.log"
dir_a=$(sort -u "$work/dirs.a" 2>/dev/null) dir_b=$(sort -u "$work/dirs.b" 2>/dev/null)
[ "$(echo "$dir_a" | wc -l)" = 1 ] && [ "$(echo "$dir_b" | wc -l)" = 1 ] && [ -n "$dir_a" ] &&
  [ "$dir_a" != "$dir_b" ] || failed "each invocation's tests should share one folder of their own: $dir_a | $dir_b"
[ -z "$(left)" ] || failed "two passing invocations left $(left)"

# Under ctest -T memcheck: valgrind runs each test's command (bash) in the ctest's child process.
if command -v valgrind >/dev/null; then
  rm -f "$work"/at.*
  (cd "$proj" && TOKEN=m RUNS=1 "$ctest" -T memcheck --overwrite "MemoryCheckCommand=$(command -v valgrind)" \
    --output-on-failure >"$work/memcheck.log" 2>&1) || failed "ctest -T memcheck failed" "$work/memcheck.log"
  [ -z "$(left)" ] || failed "ctest -T memcheck left $(left)"
else
  echo "no valgrind: ctest -T memcheck not tried"
fi

# A failing test, run through the launcher: the folder and its mark stay (the cleanup sees the mark), named.
rm -f "$work"/at.*
(cd "$proj" && TOKEN=f RUNS=1 FAIL_IN=launcher "$ctest" --output-on-failure >"$work/fail.log" 2>&1) &&
  failed "a run whose test launcher fails passed" "$work/fail.log"
kept=$(sort -u "$work/dirs.f" 2>/dev/null)
[ -n "$kept" ] && [ -f "$kept/tokens" ] && compgen -G "$kept.running.*" >/dev/null &&
  grep -qF "the files of its fixture are kept in $kept" "$work/fail.log" ||
  failed "a failed test should keep its fixture's folder ($kept) with its mark, and name it" "$work/fail.log"

# Away from any ctest (an orphan, its parent gone: init, or a subreaper, takes it): refused, naming CG_FIXTURE_RUN.
( (bash "$fixture_dir" "$work/hand" setup >"$work/orphan.log" 2>&1; echo $? >"$work/orphan.rc") & )  # the outer
# subshell ends at once, leaving the inner one, which runs the script, an orphan
for _ in $(seq 100); do [ -s "$work/orphan.rc" ] && break; sleep 0.1; done
[ "$(cat "$work/orphan.rc" 2>/dev/null)" = 1 ] && grep -q "no ctest among the parent processes.*CG_FIXTURE_RUN" \
  "$work/orphan.log" || failed "fixture_dir.sh run away from any ctest should refuse, naming CG_FIXTURE_RUN" \
  "$work/orphan.log"
# With CG_FIXTURE_RUN, by hand: setup, run and cleanup share BASE.<name>, removed at the end.
export CG_FIXTURE_RUN=by_hand
bash "$fixture_dir" "$work/hand" setup && bash "$fixture_dir" "$work/hand" run sh -c \
  '[ "$CG_FIXTURE_DIR" = "$1" ] && touch "$1/file"' sh "$work/hand.by_hand" &&
  [ -f "$work/hand.by_hand/file" ] && bash "$fixture_dir" "$work/hand" cleanup && [ ! -e "$work/hand.by_hand" ] ||
  failed "CG_FIXTURE_RUN=by_hand should name the folder hand.by_hand, for setup, run and cleanup"
unset CG_FIXTURE_RUN

if [ "$fail" = 0 ]; then
  rm -rf "$work"
else
  echo "logs and folders kept in $work"
fi
exit "$fail"
