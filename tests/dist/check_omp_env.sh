#!/usr/bin/env bash
# run_main re-executes a tool with OMP_WAIT_POLICY=PASSIVE when it is unset, so libgomp sees it at load time
# (common/omp_env.h); a user's value is kept; arguments and the process name survive; it works under mpirun.
# Usage: check_omp_env.sh PROBE MPIEXEC
set -euo pipefail
probe=$1 mpiexec=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$(env -u OMP_WAIT_POLICY "$probe" a "two words")
echo "$out"
[ "$out" = "rank 0 name omp_env_probe args 3 last 'two words' at_exec PASSIVE getenv PASSIVE" ] || fail "unset: $out"

out=$(OMP_WAIT_POLICY=ACTIVE "$probe" x)
echo "$out"
[ "$out" = "rank 0 name omp_env_probe args 2 last 'x' at_exec ACTIVE getenv ACTIVE" ] || fail "user value not kept: $out"

out=$(env -u OMP_WAIT_POLICY "$mpiexec" --allow-run-as-root --oversubscribe --bind-to none -np 2 "$probe" y | sort)
echo "$out"
want=$(printf "rank 0 name omp_env_probe args 2 last 'y' at_exec PASSIVE getenv PASSIVE\nrank 1 name omp_env_probe args 2 last 'y' at_exec PASSIVE getenv PASSIVE")
[ "$out" = "$want" ] || fail "under mpirun: $out"
# A SIGUSR1 in the moment of the re-exec (before the new image has its handler) waits for that handler.
out=$(env -u OMP_WAIT_POLICY "$probe" --usr1-in-reexec) || fail "a signal during the re-exec ended the process ($?): $out"
echo "$out"
[ "$(echo "$out" | tail -1)" = "caught signal 10" ] || fail "the held signal did not reach the handler: $out"
echo OK
