#!/usr/bin/env bash
# Fuzz the parsers that read untrusted bytes (tests/fuzz/, docs/testing.md#fuzzing) with libFuzzer under
# AddressSanitizer + UndefinedBehaviorSanitizer: configures a clang tree ($BUILD, default build-fuzz) with CG_FUZZ=ON,
# builds the harnesses, runs each for SECONDS (default 60), JOBS at a time (default: all cores), starting from the
# committed corpus tests/fuzz/corpus/<target>. Inputs that grow coverage stay in $OUT/<target>/corpus (default
# $BUILD/fuzz-out) for the next run; a finding is written to $OUT/<target>/crash-* (or leak-*, timeout-*, oom-*) and
# the script exits 1 naming it. Once fixed, copy it into tests/fuzz/corpus/<target>/ under a name that says what it
# broke: every build replays that corpus as ctest fuzz_replay_<target>.
#   FUZZ_SECONDS=300 TARGETS="cif config" scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ALL="crystal_text cif mp20_csv sp_model hf_tokenizer_json sample_record grammar tokenizer config sweep_spec
     train_state formula safetensors hf_config peft_config"
TARGETS=${TARGETS:-$ALL}
FUZZ_SECONDS=${SECONDS_PER_TARGET:-${FUZZ_SECONDS:-60}}
BUILD=${BUILD:-build-fuzz}
OUT=${OUT:-$BUILD/fuzz-out}
JOBS=${JOBS:-$(nproc)}
# Longest input per target: a few times its largest seed (a CIF of ~40 sites, a tokenizer model of 8 KB).
declare -A MAX_LEN=([crystal_text]=512 [cif]=4096 [mp20_csv]=8192 [sp_model]=12000 [sample_record]=4096 [safetensors]=2048
                    [grammar]=400 [tokenizer]=2048 [config]=4096 [hf_config]=2048 [sweep_spec]=2048
                    [train_state]=1024 [peft_config]=2048 [formula]=64 [hf_tokenizer_json]=16384)

for t in $TARGETS; do
  [[ -n "${MAX_LEN[$t]:-}" ]] || { echo "fuzz.sh: unknown target '$t'; targets: $ALL" >&2; exit 2; }
done
command -v clang++ >/dev/null || { echo "fuzz.sh: needs clang (apt-get install clang; libFuzzer comes with it)" >&2; exit 2; }

CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DCG_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
  -DCG_WITH_NCCL=OFF -DCG_WITH_CUDA_KERNELS=OFF >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target $(for t in $TARGETS; do echo "fuzz_$t"; done)

run_one() {
  local t=$1 dir="$OUT/$1"
  mkdir -p "$dir/corpus"
  cp -n tests/fuzz/corpus/"$t"/* "$dir/corpus/" 2>/dev/null || true
  (cd "$dir" && "$OLDPWD/$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$FUZZ_SECONDS" -max_len="${MAX_LEN[$t]}" \
     -timeout=10 -rss_limit_mb=3000 -print_final_stats=1 corpus >fuzz.log 2>&1) && rc=0 || rc=$?
  local runs
  runs=$(grep -o 'number_of_executed_units: *[0-9]*' "$dir/fuzz.log" | grep -o '[0-9]*$' || echo "?")
  if [[ $rc -eq 0 ]]; then
    echo "fuzz_$t: $runs inputs in ${FUZZ_SECONDS}s, no finding"
  else
    echo "fuzz_$t: FINDING (exit $rc): $(ls "$dir" | grep -E '^(crash|leak|timeout|oom)-' | sed "s|^|$dir/|" | tr '\n' ' ')"
    grep -m1 -E 'fuzz finding|runtime error|ERROR: AddressSanitizer|ERROR: libFuzzer' "$dir/fuzz.log" || true
    echo "  log: $dir/fuzz.log"
  fi
  return $rc
}

failed=0
pids=()
for t in $TARGETS; do
  run_one "$t" > "$OUT.$t.summary" 2>&1 &
  pids+=($!)
  if (( ${#pids[@]} >= JOBS )); then wait "${pids[0]}" || failed=1; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
for t in $TARGETS; do cat "$OUT.$t.summary"; rm -f "$OUT.$t.summary"; done
exit $failed
