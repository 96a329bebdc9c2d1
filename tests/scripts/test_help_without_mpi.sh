#!/usr/bin/env bash
# Every tool prints its --help without starting MPI: on a login node whose MPI cannot start a process alone the usage
# must still print (exit 0). OMPI_MCA_pml naming no component makes OpenMPI's MPI_Init fail, so a tool that starts
# MPI before its usage exits 1 with OpenMPI's error instead (cgtrain and cgsample did). The usage line (with its
# indented continuation) names every --option the help text mentions (cgtrain's --plan was only in the summary, cgtok
# had no usage line, CLI11's says "[OPTIONS]").
#   test_help_without_mpi.sh BUILD_DIR
set -uo pipefail
build=${1:?usage: test_help_without_mpi.sh BUILD_DIR}
bad=0
for tool in trainer/cgtrain trainer/cgexport sampler/cgsample sampler/cgeval data/cgprep data/cgtok launch/cgsweep; do
  for flag in --help -h; do
    out=$(OMPI_MCA_pml=cg_no_such_component timeout 120 "$build/$tool" "$flag" 2>&1)
    rc=$?
    if [ $rc != 0 ] || ! grep -qiE "usage|^$(basename "$tool"): " <<<"$out"; then  # cgtok: "cgtok: make and ..."
      echo "FAIL: $tool $flag exited $rc without its usage when MPI cannot start:"
      head -5 <<<"$out"
      bad=1
    fi
    usage=$(awk 'tolower($0) ~ /^usage:/ { u = 1; print; next } u && /^ / { print; next } { u = 0 }' <<<"$out")
    [ -n "$usage" ] || { echo "FAIL: $tool $flag prints no 'usage:' line"; bad=1; }
    # (Not the words of a quoted command: cgsweep's default launcher "mpirun --oversubscribe ...".)
    opts=$(sed 's/"[^"]*"//g' <<<"$out" | grep -oE -- "(^|[^A-Za-z0-9_-])--[a-z][a-z-]*" | grep -oE -- "--[a-z][a-z-]*")
    for opt in $(sort -u <<<"$opts"); do
      grep -qF -- "$opt" <<<"$usage" || { echo "FAIL: $tool $flag: its usage line does not name $opt: $usage"; bad=1; }
    done
  done
done
# With a config and overrides before it, cgtrain --help still answers alone.
out=$(OMPI_MCA_pml=cg_no_such_component timeout 120 "$build/trainer/cgtrain" x.yaml train.lr=1 --help 2>&1) ||
  { echo "FAIL: cgtrain x.yaml train.lr=1 --help: $out" | head -5; bad=1; }
[ $bad = 0 ] && echo "ok: every tool's --help and -h print without MPI"
exit $bad
