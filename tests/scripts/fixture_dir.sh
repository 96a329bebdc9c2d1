#!/bin/bash
# A folder that the tests of one ctest fixture share, one for each ctest invocation: BASE.ctest<PID>, PID being the
# ctest process that runs them: the nearest ctest among this script's parent processes (ctest starts each test's
# command itself, but a wrapper may stand in between: `ctest -T memcheck`'s valgrind, a launcher, an `env` or `sh -c`
# prefix). Two ctest invocations in one build tree, at once, never share one (each has its own PID; a nested ctest,
# run by a test, is an invocation of its own), and every way of running the tests (all of them, or one alone: ctest
# adds the setup and cleanup of a fixture a test requires) leaves none behind when they pass. Not supported: a wrapper
# that runs the command away from its ctest (srun, ssh, a job queue); there, set CG_FIXTURE_RUN to a name that no
# other run of the build tree's tests uses at the same time, and the folder is BASE.<that name>. cg_add_fixture_dir
# (cmake/CgHelpers.cmake) adds the tests that make and remove it; a test that uses it runs its command through `run`.
# usage: fixture_dir.sh BASE setup            makes the folder, empty (one a crashed run left, whose ctest had the
#                                             same PID, is removed first)
#        fixture_dir.sh BASE run CMD [ARG...] runs CMD, each @DIR@ in its ARGs replaced by the folder, and
#                                             CG_FIXTURE_DIR set to it; a mark beside the folder says that CMD runs,
#                                             and stays when CMD failed (an exit other than 0 or 77, a skip) or was
#                                             killed (a timeout)
#        fixture_dir.sh BASE cleanup          removes the folder when no mark is left, else keeps it (the test that
#                                             failed names it)
set -u

# The PID of the nearest ctest (a process named ctest, or ctest3 as some distributions call it) among this script's
# parent processes, read from /proc; fails when there is none.
ctest_pid() {
  local pid=$PPID comm stat
  while [ "$pid" -gt 1 ]; do
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    case $comm in ctest | ctest[0-9]*) echo "$pid" && return 0 ;; esac
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    read -r _ pid _ <<<"${stat##*) }"  # the fields after the name (which may hold spaces or ')'): state, parent PID
  done
  return 1
}

if [ -n "${CG_FIXTURE_RUN:-}" ]; then
  case $CG_FIXTURE_RUN in
    */*) echo "fixture_dir.sh: CG_FIXTURE_RUN=$CG_FIXTURE_RUN holds a '/'; give it a name, not a path" && exit 1 ;;
  esac
  dir=$1.$CG_FIXTURE_RUN
elif pid=$(ctest_pid); then
  dir=$1.ctest$pid
else
  echo "fixture_dir.sh: no ctest among the parent processes of this test: run it with ctest, or set" \
    "CG_FIXTURE_RUN to a name for this run of the tests (the same for its setup, tests and cleanup; one that no" \
    "other run uses at the same time)"
  exit 1
fi
case ${2:-} in
  setup)
    rm -rf "$dir" "$dir".running.* && mkdir -p "$dir"
    ;;
  run)
    shift 2
    [ -d "$dir" ] || { echo "no folder $dir: its fixture's setup test did not run in this ctest invocation"; exit 1; }
    mark=$dir.running.$$
    touch "$mark" || exit 1
    CG_FIXTURE_DIR=$dir "${@//@DIR@/"$dir"}"
    rc=$?
    if [ "$rc" = 0 ] || [ "$rc" = 77 ]; then
      rm -f "$mark"
    else
      echo "$1 failed (exit $rc): the files of its fixture are kept in $dir"
    fi
    exit "$rc"
    ;;
  cleanup)
    if compgen -G "$dir.running.*" >/dev/null; then
      echo "a test that used $dir did not pass: it is kept"
    else
      rm -rf "$dir"
    fi
    ;;
  *)
    echo "usage: fixture_dir.sh BASE setup|cleanup, or fixture_dir.sh BASE run CMD [ARG...]; not '${2:-}'"
    exit 2
    ;;
esac
