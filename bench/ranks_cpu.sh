#!/usr/bin/env bash
# CPU time and wall time of one short cgtrain run at tp 1 (one process), dp 2 and tp 2 (two ranks under mpirun),
# so that what two ranks cost beyond their work (waiting in collectives, extra threads) shows as CPU time: on a
# machine shared with other work the wall time follows the neighbours, the CPU time much less.
#   bench/ranks_cpu.sh SHARDS_DIR                   configs/tiny.yaml, 20 steps, each layout REPEATS times
#   LAYOUTS="tp2" REPEATS=5 bench/ranks_cpu.sh /tmp/shards train.steps=40
# SHARDS_DIR: cgprep's output for the config (build/data/cgprep configs/tiny.yaml data.shards_dir=SHARDS_DIR).
# Extra arguments are section.key=value overrides given to every run. Each run writes in a fresh mktemp folder,
# removed at the end. Prints one line a run: layout, user + system CPU seconds (every rank), wall, load average, and
# a digest of the losses it logged (every step's loss, lr and gradient norm, each validation's loss, to the digits the
# log shows): a change meant to cost less CPU, not to change the numbers, shows the same digest before and after.
# CGTRAIN=path runs another cgtrain binary (a copy of the one before a change, to compare side by side).
# Needs /usr/bin/time (GNU time) and a build with cgtrain (BUILD_DIR, default build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
CONFIG=${CONFIG:-configs/tiny.yaml}
REPEATS=${REPEATS:-2}
LAYOUTS=${LAYOUTS:-"tp1 dp2 tp2"}
shards=${1:?usage: bench/ranks_cpu.sh SHARDS_DIR [section.key=value ...]}
shift
bin=${CGTRAIN:-$BUILD/trainer/cgtrain}
[ -x "$bin" ] || { echo "missing $bin (BUILD_DIR=$BUILD, CGTRAIN)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
work=$(mktemp -d "${TMPDIR:-/tmp}/ranks_cpu.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Short and with what a real run does besides steps: a validation at the start and end, a save at the end.
args=("$CONFIG" "data.shards_dir=$shards" train.steps=20 train.val_every=20 train.val_samples=32 checkpoint.every=0
      log.every=1 "$@")

run() {  # run LAYOUT: one timed run; prints its line
  local layout=$1 cmd
  case "$layout" in
    tp1) cmd=("$bin" "${args[@]}" parallel.tp=1) ;;
    dp2) cmd=(mpirun --bind-to none -np 2 "$bin" "${args[@]}" parallel.tp=1) ;;
    tp2) cmd=(mpirun --bind-to none -np 2 "$bin" "${args[@]}" parallel.tp=2) ;;
    *) echo "unknown layout '$layout' (tp1, dp2 or tp2)" >&2; exit 2 ;;
  esac
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  rm -rf "$work/run"
  /usr/bin/time -f '%U %S %e' -o "$work/time" "${cmd[@]}" "train.run_dir=$work/run" >"$work/log" 2>&1 ||
    { tail -20 "$work/log" >&2; echo "$layout run failed (log above)" >&2; exit 1; }
  read -r user sys wall <"$work/time"
  local losses
  losses=$(grep -oE '(val )?loss [0-9.]+( \| lr [^|]*\| gnorm [0-9.]+)?' "$work/log" | md5sum | cut -c1-8)
  printf '%-4s cpu %6.1f s (user %6.1f + sys %5.1f)  wall %6.1f s  load %-5s losses %s\n' "$layout" \
    "$(echo "$user + $sys" | bc)" "$user" "$sys" "$wall" "$load" "$losses"
}

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u '+%F %H:%M') UTC; $bin $CONFIG $*"
for _ in $(seq "$REPEATS"); do
  for layout in $LAYOUTS; do run "$layout"; done
done
