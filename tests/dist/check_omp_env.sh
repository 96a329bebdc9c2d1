#!/usr/bin/env bash
# A tool's libgomp runs with OMP_WAIT_POLICY=PASSIVE when the user set none (common/omp_env.h: the executable's getenv
# answers libgomp's constructor); a user's value is kept; the processes it starts inherit it; the
# tool does not execute itself a second time to get there; arguments and the process name are its own; also under
# mpirun. What libgomp made of the policy is read from libgomp itself: OMP_DISPLAY_ENV=verbose prints, from its
# constructor, one block per load with GOMP_SPINCOUNT, the spinning it will do: 0 for PASSIVE, 300000 for its default
# and 30000000000 for ACTIVE. One block per process also shows it was loaded once: the re-exec of old loaded it twice.
# OpenBLAS's OPENBLAS_THREAD_TIMEOUT (4 when unset) is checked by what its idle thread costs (at the end).
# Usage: check_omp_env.sh PROBE MPIEXEC
set -euo pipefail
probe=$1 mpiexec=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { env -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose "$@" 2>"$err"; }
err=$(mktemp)
trap 'rm -f "$err"' EXIT
spin() { sed -n "s/^ *GOMP_SPINCOUNT = '\(.*\)'$/\1/p" "$err" | tr '\n' ' '; }

# Unset: PASSIVE for libgomp, main and a child, though the process was started without it (at_exec).
out=$(run env -u OMP_WAIT_POLICY "$probe" a "two words")
echo "$out"
[ "$out" = "rank 0 name omp_env_probe args 3 last 'two words' at_exec (unset) getenv PASSIVE child PASSIVE" ] ||
  fail "unset: $out"
[ "$(spin)" = "0 " ] || fail "unset: libgomp loaded once with GOMP_SPINCOUNT 0 expected, got: $(spin)"

out=$(OMP_WAIT_POLICY=ACTIVE run "$probe" x)
echo "$out"
[ "$out" = "rank 0 name omp_env_probe args 2 last 'x' at_exec ACTIVE getenv ACTIVE child ACTIVE" ] ||
  fail "user value not kept: $out"
[ "$(spin)" = "30000000000 " ] || fail "ACTIVE: libgomp's GOMP_SPINCOUNT 30000000000 expected once, got: $(spin)"

out=$(run env -u OMP_WAIT_POLICY "$mpiexec" --allow-run-as-root --oversubscribe --bind-to none -np 2 "$probe" y | sort)
echo "$out"
want=$(printf "rank %s name omp_env_probe args 2 last 'y' at_exec (unset) getenv PASSIVE child PASSIVE\n" 0 1)
[ "$out" = "$want" ] || fail "under mpirun: $out"
[ "$(spin)" = "0 0 " ] || fail "under mpirun: one libgomp load per rank with GOMP_SPINCOUNT 0 expected, got: $(spin)"

# OpenBLAS's idle thread after a matmul: asleep at once (OPENBLAS_THREAD_TIMEOUT 4, the tool's getenv), about 1 ms of
# CPU in the 100 ms that follow (41-56 ms measured with OpenBLAS's default 28 on a 2-core machine at load 4). A
# user's value is kept: read through the same getenv OpenBLAS's constructor calls. Its CPU cost is printed, not
# checked: a spinning thread's share of a busy machine's cores is anybody's guess (1 ms seen under CI's load).
blas_idle() { env "$@" "$probe" blas-idle | sed -n 's/.* timeout \([^,]*\), idle cpu \([0-9]*\) ms$/\1 \2/p'; }
read -r timeout ms <<<"$(blas_idle -u OPENBLAS_THREAD_TIMEOUT)" || true
echo "OpenBLAS idle, unset: timeout ${timeout:-?}, ${ms:-?} ms"
[ "${timeout:-}" = 4 ] || fail "unset: OpenBLAS was answered OPENBLAS_THREAD_TIMEOUT=${timeout:-?} (4 expected)"
[ -n "$ms" ] && [ "$ms" -lt 10 ] ||
  fail "unset: OpenBLAS's idle thread used ${ms:-?} ms of CPU in 100 ms (under 10 expected)"
read -r timeout ms <<<"$(blas_idle OPENBLAS_THREAD_TIMEOUT=30)" || true
echo "OpenBLAS idle, 30: timeout ${timeout:-?}, ${ms:-?} ms"
[ "${timeout:-}" = 30 ] || fail "a user's OPENBLAS_THREAD_TIMEOUT=30 not kept: OpenBLAS was answered ${timeout:-?}"
echo OK
