#!/bin/bash
# A folder that the tests of one ctest fixture share, one for each ctest invocation: BASE.ctest<PID>, PID being the
# ctest process that runs them (ctest starts each test's command itself: it is this script's $PPID). Two ctest
# invocations in one build tree never share one, and every way of running the tests (all of them, or one alone: ctest
# adds the setup and cleanup of a fixture a test requires) leaves none behind when they pass. cg_add_fixture_dir
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
dir=$1.ctest$PPID
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
