# Sourced by the tests of errors said once under mpirun (cg::InputError, dist::run_main). The caller sets `mpi`, an
# array holding the launch of a tool on several ranks (mpirun ... TOOL ARGS).
# once WANT ARGS...: that launch with ARGS more must fail with one 'fatal:' line, from rank 0, holding WANT (an error
# every rank meets alike is said by rank 0 alone, not once per rank); else the test says what came and exits 1.
once() {
  local want=$1
  shift
  err=$("${mpi[@]}" "$@" 2>&1 >/dev/null)
  rc=$?
  n=$(grep -c "fatal:" <<<"$err")
  [ "$rc" != 0 ] && [ "$n" = 1 ] && grep -qF "[rank 0] fatal: " <<<"$err" && grep -qF -- "$want" <<<"$err" ||
    { echo "${mpi[*]} $*: rc $rc, $n 'fatal:' lines, expected one from rank 0 with '$want': $err"; exit 1; }
}
