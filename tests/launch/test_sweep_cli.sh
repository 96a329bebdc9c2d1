#!/usr/bin/env bash
# cgsweep's command line with stub tools (no cgtrain needed): option checks, a swept key refused on the command
# line, where the tools are looked for (--bin-dir, $CG_BIN_DIR), and a Slurm array task (the generated sweep.sbatch
# run with stub srun/scontrol) whose finished point a local run, naming the same folders another way, skips; array
# tasks for a point another cgsweep runs (refused, its files left alone), a done, a failed and a trained-on point, and
# one whose index names another point since the sweep file was edited (refused), one waiting for another's cgprep.
# usage: test_sweep_cli.sh SOURCE_DIR BUILD_DIR [SHARD_WITHOUT_COUNTS]
set -uo pipefail
SRC=$(cd "${1:?usage: test_sweep_cli.sh SOURCE_DIR BUILD_DIR}" && pwd)
CGSWEEP=$(cd "${2:?usage: test_sweep_cli.sh SOURCE_DIR BUILD_DIR}" && pwd)/launch/cgsweep
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
unset CG_BIN_DIR SLURM_JOB_ID SLURM_ARRAY_TASK_ID SLURM_RESTART_COUNT CG_MAX_REQUEUES
EXPECT_LOG=$T/log
. "$(dirname "$0")/expect.sh"
stub() { printf '#!/usr/bin/env bash\n%s\n' "$2" >"$1"; chmod +x "$1"; }

mkdir -p "$T/bin" "$T/other" "$T/fake" "$T/sub"
for t in cgprep cgtrain cgexport cgsample cgeval; do stub "$T/bin/$t" "echo \"$t \$*\" >>'$T/calls'"; done
stub "$T/other/cgprep" "exit 0"
stub "$T/fake/srun" "echo \"srun \$*\" >>'$T/srun.calls'"'; while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done; exec "$@"'
stub "$T/fake/scontrol" "echo \"\$*\" >>'$T/scontrol.calls'"
printf 'train:\n  steps: 3\n' >"$T/base.yaml"
printf 'base: base.yaml\nout_dir: out\ngrid:\n  lora.r: [2, 4]\n' >"$T/s.yaml"
cd "$T"

# --- options CLI11 does not check --------------------------------------------------------------------------------
expect_rc 2 "--point -2" "$CGSWEEP" s.yaml --point -2 --dry-run
expect_out "--point -2: give a point index >= 0" "--point message"
expect_rc 2 "--np -3" "$CGSWEEP" s.yaml --np -3 --dry-run
expect_out "--np -3: give the ranks per point, >= 1" "--np message"
# A value CLI11 cannot read and an unknown option: said in our words (what was given, what it takes, --help), not
# CLI11's "Could not convert: --np = abc" / "The following argument was not expected: --foo".
expect_rc 2 "--np abc" "$CGSWEEP" s.yaml --np abc --dry-run
expect_out "^cgsweep: --np: abc is not a whole number; give the ranks per point, >= 1; run cgsweep --help$" \
  "--np abc message"
expect_rc 2 "--point=x" "$CGSWEEP" s.yaml --point=x --dry-run
expect_out "^cgsweep: --point: x is not a whole number; give a point index >= 0 \(points.tsv lists them\); run " \
  "--point=x message"
expect_rc 2 "--foo" "$CGSWEEP" s.yaml --foo --dry-run
expect_out "^cgsweep: unknown option --foo; run cgsweep --help$" "--foo message"
expect_rc 2 "--np at the end" "$CGSWEEP" s.yaml --np
expect_out "^cgsweep: --np needs a value; run cgsweep --help$" "--np without a value message"
expect_rc 2 "--slurm --summary" "$CGSWEEP" s.yaml --slurm --summary
expect_out "--slurm and --summary do not combine" "--slurm --summary message"
[ ! -e out/summary.md ] && ok || bad "--slurm --summary wrote a summary"

# --- a swept key on the command line -----------------------------------------------------------------------------
expect_rc 2 "swept key on the command line" "$CGSWEEP" s.yaml lora.r=8 --dry-run
expect_out "lora.r=8 on the command line: the sweep file .*s.yaml sweeps lora.r \(grid:\)" "swept key message"
expect_rc 0 "other key on the command line" "$CGSWEEP" s.yaml train.steps=5 --dry-run
[ ! -e out ] && ok || bad "a dry run made out_dir or wrote point.yaml files"
expect_out "data files of the sweep's config not found from $T: data/mp20/test.csv.gz, data/mp20/train.csv.gz" \
  "relative data paths that do not resolve here are named"
# A base model that is not there: said at once, not by every point's cgtrain after the job's wait in the queue.
mkdir -p hf && echo '{}' >hf/config.json
expect_rc 0 "a model.hf_dir without config.json" "$CGSWEEP" s.yaml model.hf_dir=nohf --dry-run
expect_out "model.hf_dir of the sweep's config has no config.json from $T: nohf; a point with it stops as its cgtrain" \
  "the missing base model is named"
expect_rc 0 "a model.hf_dir with its config.json" "$CGSWEEP" s.yaml model.hf_dir=hf --dry-run
grep -q "model.hf_dir of the sweep's config" "$EXPECT_LOG" && bad "warned of a base model that is there" || ok
expect_rc 2 "a folder key on the command line" "$CGSWEEP" s.yaml train.run_dir=/tmp/x --dry-run
expect_out "train.run_dir=/tmp/x on the command line: train.run_dir is set by cgsweep for every point" "folder key message"

# --- out_dir is a file ---------------------------------------------------------------------------------------------
touch afile
expect_rc 2 "out_dir is a file" "$CGSWEEP" s.yaml --out-dir afile --bin-dir "$T/bin" --launcher env
expect_out "the sweep's out_dir \(out_dir: in .*s.yaml, or --out-dir\)" "out_dir message names the setting"
expect_rc 2 "a dry run with out_dir under a file" "$CGSWEEP" s.yaml --out-dir afile/sweep --dry-run
expect_out "out_dir \(out_dir: in .*s.yaml, or --out-dir\) = $T/afile/sweep: $T/afile is a file, not a folder" "a dry run names the file in out_dir's way"
rm afile

# --- a sample stage that would fail: found before the first point trains, dry run or not ------------------------
printf 'base: base.yaml\nout_dir: sout\nsample: true\ngrid:\n  lora.r: [2, 4]\n' >"$T/ss.yaml"
mkdir -p data/mp20 && touch data/mp20/train.csv.gz data/mp20/test.csv.gz  # the eval stage's default references
expect_rc 2 "a bad sample.formula (dry run)" "$CGSWEEP" ss.yaml sample.formula=xx2 --dry-run
expect_out "sweep point 0 \(r2\): its sample stage would fail: .*sample.formula=xx2 is not a formula" \
  "the bad formula is named with the point"
expect_rc 2 "a bad sample.formula" "$CGSWEEP" ss.yaml sample.formula=xx2 --bin-dir "$T/bin" --launcher env
[ ! -e sout ] && ok || bad "a sweep with a sample stage that would fail wrote out_dir"
expect_rc 2 "infill without data.test_csv" "$CGSWEEP" ss.yaml sample.task=infill data.test_csv= --dry-run
expect_out "sample.task=infill masks elements of the crystals of data.test_csv, which is empty" "infill message"
expect_rc 0 "a formula" "$CGSWEEP" ss.yaml sample.formula=NaCl --dry-run
[ ! -e sout ] && ok || bad "a dry run wrote out_dir"

# --- an eval stage that would fail: its references, the invariance check's split and tp --------------------------
expect_rc 2 "a missing novelty reference (dry run)" "$CGSWEEP" ss.yaml eval.train_csv=nosuch.csv --dry-run
expect_out "sweep point 0 \(r2\): its eval stage would fail: eval.train_csv=nosuch.csv names nosuch.csv, which does not exist from $T" \
  "the missing reference is named with the point"
expect_rc 2 "a missing distribution reference" "$CGSWEEP" ss.yaml data.test_csv=gone.csv --bin-dir "$T/bin" --launcher env
expect_out "eval.ref_csv=data.test_csv names gone.csv, which does not exist" "a reference by key is resolved and named"
[ ! -e sout ] && ok || bad "a sweep with an eval stage that would fail wrote out_dir"
expect_rc 2 "a key-like reference that is no CSV key" "$CGSWEEP" ss.yaml eval.ref_csv=data.tset_csv --dry-run
expect_out "its eval stage would fail: eval.ref_csv: .*data.tset_csv" "the mistyped key is named"
expect_rc 2 "invariance at tp 2" "$CGSWEEP" ss.yaml eval.invariance=true parallel.tp=2 --np 2 --dry-run
expect_out "cgsweep runs cgeval as one process, which cannot hold parallel.tp=2" "invariance at tp 2 message"
expect_rc 2 "invariance without a test split" "$CGSWEEP" ss.yaml eval.invariance=true data.test_csv= eval.ref_csv= --dry-run
expect_out "eval.invariance=true scores crystals of data.test_csv, which is empty" "invariance without test_csv message"
expect_rc 0 "no references" "$CGSWEEP" ss.yaml eval.train_csv= eval.ref_csv= data.train_csv=x.csv data.test_csv=y.csv --dry-run

# --- where the tools are: --bin-dir, then $CG_BIN_DIR --------------------------------------------------------------
expect_rc 0 "CG_BIN_DIR" env CG_BIN_DIR="$T/bin" "$CGSWEEP" s.yaml --dry-run --point 0
expect_out "\[prep\] $T/bin/cgprep " "tools from \$CG_BIN_DIR"
expect_rc 0 "--bin-dir over CG_BIN_DIR" env CG_BIN_DIR="$T/bin" "$CGSWEEP" s.yaml --dry-run --point 0 --bin-dir "$T/other"
expect_out "\[prep\] $T/other/cgprep " "--bin-dir wins"

# --- launchers split like a shell: a quoted word with a space reaches the launcher whole ----------------------------
stub "$T/lx" "printf '%s\\n' \"\$@\" >'$T/lx.args'; shift 3; exec \"\$@\""
expect_rc 0 "--launcher with a quoted word" "$CGSWEEP" s.yaml --out-dir lout --point 0 --bin-dir bin \
  --launcher "$T/lx -x 'MY_VAR=a b' {np}"
[ "$(sed -n 2p lx.args)" = "MY_VAR=a b" ] && [ "$(sed -n 3p lx.args)" = 1 ] && ok ||
  bad "the launcher got other words: $(cat lx.args 2>/dev/null)"
expect_rc 0 "a dry run with that launcher" "$CGSWEEP" s.yaml --out-dir lout2 --point 0 --bin-dir bin --dry-run \
  --launcher "$T/lx -x 'MY_VAR=a b' {np}"
expect_out "\[train\] $T/lx -x 'MY_VAR=a b' 1 $T/bin/cgtrain " "the printed command can be pasted into a shell"
expect_rc 2 "a launcher with an unclosed quote" "$CGSWEEP" s.yaml --dry-run --launcher "mpirun -x 'A=b"
expect_out "--launcher: 'mpirun -x 'A=b' has a ' that is never closed" "unclosed quote message"
printf "base: base.yaml\nout_dir: out\nlauncher: \"env -u 'X Y\"\ngrid:\n  lora.r: [2]\n" >bad_launcher.yaml
expect_rc 2 "a sweep file's launcher with an unclosed quote" "$CGSWEEP" bad_launcher.yaml --dry-run
expect_out "launcher: in .*bad_launcher.yaml: " "the sweep file's launcher is named"

# --- Slurm: out_dir named relative to another folder; array task 0 run with stub srun/scontrol -------------------
(cd sub && "$CGSWEEP" ../s.yaml --out-dir ../out --slurm --bin-dir ../bin) >"$T/log" 2>&1 && ok || bad "--slurm: $(cat "$T/log")"
grep -q -- "'--out-dir' '$T/out'" out/sweep.sbatch && ok || bad "sweep.sbatch: --out-dir not normalized: $(grep -- --out-dir out/sweep.sbatch)"
sum_before=$(md5sum out/*/point.yaml)
expect_rc 0 "array task 0" env PATH="$T/fake:$PATH" SLURM_ARRAY_TASK_ID=0 SLURM_JOB_ID=99 bash out/sweep.sbatch
[ "$(cat out/r2/status 2>/dev/null)" = done ] && ok || bad "array task 0: status $(cat out/r2/status 2>/dev/null)"
[ "$(md5sum out/*/point.yaml)" = "$sum_before" ] && ok || bad "the array task rewrote point.yaml files"
grep -q "^cgprep .*r2/point.yaml" calls && ok || bad "cgprep did not run: $(cat calls)"
# Every stage a job step (USR1 reaches job steps only): the one-process tools through a one-task srun.
for t in cgprep cgtrain; do
  grep -q "^srun .*/$t " srun.calls && ok || bad "$t not run through srun: $(cat srun.calls 2>/dev/null)"
done
grep -q "^srun --nodes=1 --ntasks=1 .*/cgprep " srun.calls && ok || bad "cgprep not in a one-task step: $(cat srun.calls)"
# The same sweep here, out_dir spelled ./out/: point 0 is done and unchanged, so it is skipped.
expect_rc 0 "local rerun" "$CGSWEEP" "$T/sub/../s.yaml" --out-dir ./out/ --point 0 --bin-dir bin --launcher env
expect_out "point 0 \(r2\) is done; skipped" "finished point skipped"
expect_rc 0 "dry run of a done point" "$CGSWEEP" "$T/s.yaml" --out-dir ./out --point 0 --dry-run --bin-dir bin
expect_out "point 0 \(r2\) is done; it would be skipped" "a dry run says a done point is skipped"
expect_rc 0 "--summary of a folder the sweep never ran in" "$CGSWEEP" s.yaml --summary --out-dir nosuch
expect_out "no point of this sweep has run in .*nosuch" "--summary warns about an empty out_dir"
[ "$(md5sum out/*/point.yaml)" = "$sum_before" ] && ok || bad "the local run rewrote point.yaml files"

# --- a line break in out_dir: refused before anything is written (it would be a command of its own in sweep.sbatch)
expect_rc 2 "a newline in --out-dir" "$CGSWEEP" s.yaml --out-dir "$(printf 'nl\ntouch injected')" --slurm --bin-dir bin
expect_out "the sweep's out_dir \(out_dir: in .*s.yaml, or --out-dir\) '$T/nl\\\\ntouch injected' contains a newline" \
  "the newline message names the setting"
[ ! -e "$(printf 'nl\ntouch injected')" ] && ok || bad "a refused out_dir was made"

# --- a moved checkout: sweep.sbatch sources the launch/requeue.sh beside the cgsweep that wrote it -----------------
# (<repo>/build/launch/cgsweep -> <repo>/launch/requeue.sh), not the one of the folder it was compiled in.
mkdir -p "moved/it's here/build/launch" "moved/it's here/launch"
cp "$CGSWEEP" "moved/it's here/build/launch/cgsweep"
cp "$SRC/launch/requeue.sh" "$SRC/launch/forward.sh" "moved/it's here/launch/"
expect_rc 0 "--slurm from a moved checkout" "moved/it's here/build/launch/cgsweep" s.yaml --out-dir mout --slurm \
  --bin-dir bin
moved_requeue="$T/moved/it'\''s here/launch/requeue.sh"  # as sq() writes it inside '...'
grep -qF "source '$moved_requeue' || { echo 'sweep.sbatch: cannot read $moved_requeue;" mout/sweep.sbatch && ok ||
  bad "sweep.sbatch does not source the moved checkout's requeue.sh: $(grep source mout/sweep.sbatch)"
expect_rc 0 "array task of the moved checkout" env PATH="$T/fake:$PATH" SLURM_ARRAY_TASK_ID=1 SLURM_JOB_ID=98 \
  bash mout/sweep.sbatch
[ "$(cat mout/r4/status 2>/dev/null)" = done ] && ok ||
  bad "moved checkout's task: status $(cat mout/r4/status 2>/dev/null)"

# --- requeue: preempted task requeued, at most CG_MAX_REQUEUES times ----------------------------------------------
stub "$T/preempted" "exit 75"
rm -f scontrol.calls
expect_rc 0 "preempted task requeued" env PATH="$T/fake:$PATH" CGSWEEP="$T/preempted" SLURM_ARRAY_TASK_ID=0 \
  SLURM_JOB_ID=99 bash out/sweep.sbatch
[ "$(cat scontrol.calls 2>/dev/null)" = "requeue 99" ] && ok || bad "not requeued: $(cat scontrol.calls 2>/dev/null)"
rm -f scontrol.calls
expect_rc 75 "requeue cap" env PATH="$T/fake:$PATH" CGSWEEP="$T/preempted" SLURM_ARRAY_TASK_ID=0 SLURM_JOB_ID=99 \
  SLURM_RESTART_COUNT=5000 CG_MAX_REQUEUES=3 bash out/sweep.sbatch
expect_out "already restarted 5000 times \(CG_MAX_REQUEUES=3\); not requeueing" "cap message"
[ ! -e scontrol.calls ] && ok || bad "requeued past CG_MAX_REQUEUES"

# --- a point preempted in an array task: requeue.sh requeues the task, and cgsweep's warning says so ----------------
mkdir -p pre
for t in cgprep cgexport cgsample cgeval; do cp "bin/$t" pre/; done
stub pre/cgtrain "exit 75"  # cgtrain saved and exited 75
expect_rc 0 "--slurm with a cgtrain that is preempted" "$CGSWEEP" s.yaml --out-dir preempt --slurm --bin-dir pre
rm -f scontrol.calls
expect_rc 0 "the preempted point's array task" env PATH="$T/fake:$PATH" SLURM_ARRAY_TASK_ID=0 SLURM_JOB_ID=87 \
  bash preempt/sweep.sbatch
expect_out "point r2: cgtrain was preempted \(exit 75\) after saving; the array task exits 75 and launch/requeue.sh \
requeues it \(its line follows\), to resume from its checkpoint when Slurm starts it again: squeue -j 87 shows it \
queued, and $T/preempt/r2/status says \"preempted\" until then" "the warning says the task is requeued, and how"
expect_out "requeueing job 87" "requeue.sh's line follows"
grep -q "rerun the sweep" "$EXPECT_LOG" && bad "an array task says to rerun the sweep: $(cat "$EXPECT_LOG")" || ok
[ "$(cat scontrol.calls 2>/dev/null)" = "requeue 87" ] && ok || bad "not requeued: $(cat scontrol.calls 2>/dev/null)"
[ "$(cat preempt/r2/status 2>/dev/null)" = preempted ] && ok || bad "r2: $(cat preempt/r2/status 2>/dev/null)"
# The same point run by hand (no array task): nothing requeues it, so the warning says to run the sweep again.
expect_rc 75 "the preempted point run by hand" "$CGSWEEP" s.yaml --out-dir preempt --point 0 --bin-dir pre \
  --launcher env
expect_out "point r2: cgtrain was preempted \(exit 75\) after saving; rerun the sweep to resume from its checkpoint$" \
  "by hand, the warning says to rerun"

# --- array tasks: a point another cgsweep runs, one already done, a failed one rerun, a done one trained on ----------
# The stub cgtrain of point r4 waits for $T/go; the stub srun runs a task's stages here.
mkdir -p slow
for t in cgprep cgexport cgsample cgeval; do cp "bin/$t" slow/; done
stub slow/cgtrain "echo \"cgtrain \$*\" >>'$T/calls'; [ -e '$T/fail' ] && exit 1
case \"\$*\" in *r4/point.yaml) touch '$T/started'; until [ -e '$T/go' ]; do sleep 0.1; done ;; esac; exit 0"
expect_rc 0 "--slurm for the array tasks" "$CGSWEEP" s.yaml --out-dir busy --slurm --bin-dir slow
"$CGSWEEP" s.yaml --out-dir busy --point 1 --bin-dir slow --launcher env train.steps=7 >local.log 2>&1 &
local=$!
for _ in $(seq 100); do [ -e started ] && break; sleep 0.1; done
sum_before=$(md5sum busy/*/point.yaml)
rm -f scontrol.calls
expect_rc 2 "an array task for a point another cgsweep runs" env PATH="$T/fake:$PATH" SLURM_ARRAY_TASK_ID=1 \
  SLURM_JOB_ID=97 bash busy/sweep.sbatch
expect_out "point 1 \(r4\) is being run by another cgsweep right now \(process $local on host .* holds \
$T/busy/r4/.cgsweep.lock\); wait for that one to finish or stop it, then run again \(a Slurm array task: sbatch \
--array=1 $T/busy/sweep.sbatch\)" "the task names the cgsweep that runs the point, and how to run the task again"
# Refused: it leaves the running point's config (which its stages read: train.steps=7) and status alone.
[ "$(md5sum busy/*/point.yaml)" = "$sum_before" ] && ok || bad "the refused task rewrote point.yaml files: \
$(grep -H 'steps:' busy/*/point.yaml)"
[ "$(cat busy/r4/status 2>/dev/null)" = running ] && ok ||
  bad "the refused task changed the status: $(cat busy/r4/status 2>/dev/null)"
[ ! -e scontrol.calls ] && ok || bad "a refused task was requeued"
# The job written again meanwhile (--slurm, the job's train.steps=3): the running point's point.yaml, which its later
# stages read, is left alone, with a warning naming the cgsweep that runs it.
expect_rc 0 "--slurm while another cgsweep runs a point" "$CGSWEEP" s.yaml --out-dir busy --slurm --bin-dir slow
expect_out "point 1 \(r4\): its point.yaml is left as it is: another cgsweep runs the point right now \(process \
$local on host .* holds $T/busy/r4/.cgsweep.lock\)" "the point left alone is named, with its holder"
grep -q "steps: 7 " busy/r4/point.yaml && ok || bad "--slurm rewrote the point.yaml of a point another cgsweep runs: \
$(grep 'steps:' busy/r4/point.yaml)"
[ -e busy/r2/point.yaml ] && [ ! -e busy/r2/.cgsweep.lock ] && ok ||
  bad "--slurm: r2's point.yaml missing, or a lock file left where no run made one: $(ls -a busy/r2)"
touch go
wait "$local" && ok || bad "the local run of point 1 failed: $(cat local.log)"
grep -q "steps: 7 " busy/r4/point.yaml && ok || bad "the local run's point.yaml lost its train.steps=7"
rm -rf busy/r4  # its train.steps=7 is not the job's 3: what a changed point needs to run again with the job's config
# array task <task> <job id>: sweep.sbatch as Slurm starts task <task> of the array.
array_task() { env PATH="$T/fake:$PATH" SLURM_ARRAY_TASK_ID="$1" SLURM_JOB_ID="$2" bash busy/sweep.sbatch; }
expect_rc 0 "an array task for a point whose folder was deleted" array_task 1 96
[ "$(cat busy/r4/status 2>/dev/null)" = done ] && ok || bad "point r4 not run again: $(cat busy/r4/status 2>/dev/null)"
grep -q "steps: 3 " busy/r4/point.yaml && ok || bad "point r4 did not get the job's train.steps=3"
rm -f calls
expect_rc 0 "an array task for a done point" array_task 1 95
expect_out "point 1 \(r4\) is done; skipped" "the done point is said skipped"
[ ! -e calls ] && ok || bad "a done point's task ran a tool: $(cat calls)"
touch fail
expect_rc 1 "an array task whose training fails" array_task 0 94
[ "$(cat busy/r2/status 2>/dev/null)" = "failed: train (exit 1)" ] && ok || bad "r2: $(cat busy/r2/status 2>/dev/null)"
rm -f fail calls
# Its lock held for a moment (as --slurm holds it while it writes the point's point.yaml): the task waits, not refused.
flock busy/r2/.cgsweep.lock -c "touch '$T/held'; sleep 1" &
holder=$!
for _ in $(seq 100); do [ -e held ] && break; sleep 0.1; done
expect_rc 0 "the failed point's task run again" array_task 0 94
wait "$holder"
[ "$(cat busy/r2/status 2>/dev/null)" = done ] && ok || bad "the failed point rerun: $(cat busy/r2/status 2>/dev/null)"
grep -q "^cgtrain .*r2/point.yaml" calls && ok || bad "the failed point was not trained again: $(cat calls 2>/dev/null)"
[ ! -e scontrol.calls ] && ok || bad "a task that did not stop for a signal was requeued: $(cat scontrol.calls)"
# Training a done point on: the job written again with a larger train.steps (inside the warmup: the steps it trained
# keep their lr), its task trains on and gets the new point.yaml.
expect_rc 0 "--slurm with a larger train.steps" "$CGSWEEP" s.yaml --out-dir busy --slurm --bin-dir slow train.steps=5
grep -q "steps: 3 " busy/r4/point.yaml && ok || bad "--slurm replaced a done point's point.yaml before it trained on"
expect_rc 0 "the array task trains the done point on" array_task 1 93
expect_out "point 1 \(r4\) is done at train.steps=3; training on to train.steps=5 from its last checkpoint" \
  "training on is said"
grep -q "steps: 5 " busy/r4/point.yaml && [ "$(cat busy/r4/status)" = done ] && ok ||
  bad "the point trained on: status $(cat busy/r4/status), $(grep 'steps:' busy/r4/point.yaml)"

# --- an array task waiting for another task's cgprep of its shards: it says so, and USR1 then stops it, requeued ----
mkdir -p slowprep
for t in cgtrain cgexport cgsample cgeval; do cp "bin/$t" slowprep/; done
stub slowprep/cgprep "touch '$T/prep.started'; until [ -e '$T/prep.go' ]; do sleep 0.1; done"
expect_rc 0 "--slurm with a slow cgprep" "$CGSWEEP" s.yaml --out-dir wait --slurm --bin-dir slowprep
env PATH="$T/fake:$PATH" SLURM_ARRAY_TASK_ID=0 SLURM_JOB_ID=89 bash wait/sweep.sbatch >task0.log 2>&1 &
task0=$!
for _ in $(seq 100); do [ -e prep.started ] && break; sleep 0.1; done
env PATH="$T/fake:$PATH" SLURM_ARRAY_TASK_ID=1 SLURM_JOB_ID=88 bash wait/sweep.sbatch >task1.log 2>&1 &
task1=$!
for _ in $(seq 100); do grep -q "waiting for another" task1.log && break; sleep 0.1; done
rm -f scontrol.calls
kill -USR1 "$task1"
wait "$task1" && ok || bad "the task preempted while it waited did not exit 0: $(cat task1.log)"
cp task1.log "$EXPECT_LOG"
expect_out "\[prep\] waiting for another cgsweep's cgprep of $T/wait/shards/data-[0-9a-f]+ \(process [0-9]+ on host \
.* holds $T/wait/shards/data-[0-9a-f]+.lock\)" "the wait is said, naming the holder"
[ "$(cat wait/r4/status 2>/dev/null)" = "preempted: prep" ] && ok || bad "r4 after USR1: $(cat wait/r4/status)"
[ "$(cat scontrol.calls 2>/dev/null)" = "requeue 88" ] && ok || bad "the waiting task not requeued: $(cat task1.log)"
touch prep.go
wait "$task0" && [ "$(cat wait/r2/status 2>/dev/null)" = done ] && ok || bad "task 0: $(cat task0.log)"
expect_rc 0 "the requeued task" env PATH="$T/fake:$PATH" SLURM_ARRAY_TASK_ID=1 SLURM_JOB_ID=88 SLURM_RESTART_COUNT=1 \
  bash wait/sweep.sbatch
expect_out "\[prep\] shards for data-[0-9a-f]+ already prepared" "the requeued task finds the shards prepared"
[ "$(cat wait/r4/status 2>/dev/null)" = done ] && ok || bad "the requeued task: r4 $(cat wait/r4/status)"

# --- a sweep file edited after --slurm: an array task whose index now names another point is refused --------------
printf 'base: base.yaml\nout_dir: shift\ngrid:\n  lora.r: [4, 8]\n' >shift.yaml
expect_rc 0 "--slurm before the edit" "$CGSWEEP" shift.yaml --slurm --bin-dir bin
printf 'base: base.yaml\nout_dir: shift\ngrid:\n  lora.r: [2, 4, 8]\n' >shift.yaml  # a value put first
rm -f calls
expect_rc 2 "an array task whose point moved" env PATH="$T/fake:$PATH" SLURM_ARRAY_TASK_ID=1 SLURM_JOB_ID=92 \
  bash shift/sweep.sbatch
expect_out "--point 1: the sweep .*shift.yaml makes point 1 r4, but $T/shift/points.tsv, written with its Slurm job \
by cgsweep --slurm, has r8 there: .*write the job again \(cgsweep --slurm" "the moved point is named with what to do"
[ ! -e calls ] && [ ! -e shift/r4/status ] && ok || bad "the task ran a point: $(cat calls 2>/dev/null)"
printf 'base: base.yaml\nout_dir: shift\ngrid:\n  lora.r: [4]\n' >shift.yaml  # the last value taken out
expect_rc 2 "an array task whose point is gone" env PATH="$T/fake:$PATH" SLURM_ARRAY_TASK_ID=1 SLURM_JOB_ID=92 \
  bash shift/sweep.sbatch
expect_out "--point 1: the sweep .*shift.yaml has points 0..0 only, but $T/shift/points.tsv, written with its Slurm \
job by cgsweep --slurm, has r8 there" "the point taken out is named"
printf 'base: base.yaml\nout_dir: shift\ngrid:\n  lora.r: [2, 4, 8]\n' >shift.yaml
expect_rc 0 "--slurm after the edit" "$CGSWEEP" shift.yaml --slurm --bin-dir bin
expect_rc 0 "the array task of the job written again" env PATH="$T/fake:$PATH" SLURM_ARRAY_TASK_ID=2 SLURM_JOB_ID=91 \
  bash shift/sweep.sbatch
[ "$(cat shift/r8/status 2>/dev/null)" = done ] && ok || bad "task 2 did not run r8: $(cat shift/r8/status 2>/dev/null)"

# --- sample conditions the training data never carries: said on cgsweep's console right after the point's cgprep,
# before cgtrain, once per shards folder (the real cgprep on 40 rows of a CSV without a band_gap column; stub others).
BUILD=$(cd "$2" && pwd)
if [ -x "$BUILD/data/cgprep" ]; then
  mkdir -p pbin
  for t in cgtrain cgexport cgsample cgeval; do cp "bin/$t" pbin/; done
  stub pbin/cgprep "exec '$BUILD/data/cgprep' \"\$@\""
  python3 - "$SRC/data/mp20/test.csv.gz" nogap.csv <<'PY'
import csv, gzip, sys
with gzip.open(sys.argv[1], "rt", newline="") as f:
    rows = list(csv.DictReader(f))[:40]
with open(sys.argv[2], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=[k for k in rows[0] if k != "band_gap"], extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
PY
  printf 'base: base.yaml\nsample: true\ngrid:\n  lora.r: [2, 4]\n' >gap.yaml
  data=(data.train_csv=nogap.csv data.val_csv= data.test_csv= data.tokenizer=train data.tokenizer_vocab_size=512
        eval.train_csv= eval.ref_csv= sample.formula=NaCl)
  expect_rc 0 "a band gap the data lacks" "$CGSWEEP" gap.yaml --out-dir gap --bin-dir pbin --launcher env "${data[@]}" \
    sample.band_gap=1.5
  expect_out "sweep point 0 \(r2\): its sample stage's prompts state band_gap, but the training prompts of its \
shards $T/gap/shards/data-[0-9a-f]+ never state it \(.*nogap.csv, 40 crystals: band_gap 0\)" "the band gap is named"
  [ "$(grep -c "never state" "$EXPECT_LOG")" = 1 ] && ok || bad "not said once for two points of one shards folder"
  warned=$(grep -n "never state" "$EXPECT_LOG" | cut -d: -f1)
  trained=$(grep -n "\[train\]" "$EXPECT_LOG" | head -1 | cut -d: -f1)
  [ -n "$warned" ] && [ -n "$trained" ] && [ "$warned" -lt "$trained" ] && ok || bad "not said before cgtrain"
  expect_rc 0 "a space group the data has" "$CGSWEEP" gap.yaml --out-dir gap2 --bin-dir pbin --launcher env \
    "${data[@]}" sample.spacegroup=225
  grep -q "never state" "$EXPECT_LOG" && bad "warned of carried properties" || ok
  # A dry run checks the shards already there (here new points of the sweep's, whose data settings were prepared),
  # warning as a run does; where there are none yet it says, once, that the check comes after cgprep; with every
  # condition carried it says neither.
  printf 'base: base.yaml\nsample: true\ngrid:\n  lora.r: [8, 16]\n' >gap8.yaml
  expect_rc 0 "a dry run on shards lacking the band gap" "$CGSWEEP" gap8.yaml --out-dir gap --bin-dir pbin \
    --launcher env "${data[@]}" sample.band_gap=1.5 --dry-run
  expect_out "sweep point 0 \(r8\): its sample stage's prompts state band_gap, but the training prompts of its \
shards $T/gap/shards/data-[0-9a-f]+ never state it \(.*nogap.csv, 40 crystals: band_gap 0\)" "a dry run names the band gap"
  [ "$(grep -c "never state" "$EXPECT_LOG")" = 1 ] && ok || bad "a dry run did not say it once for one shards folder"
  warned=$(grep -n "never state" "$EXPECT_LOG" | cut -d: -f1)
  trained=$(grep -n "\[train\]" "$EXPECT_LOG" | head -1 | cut -d: -f1)
  [ -n "$warned" ] && [ -n "$trained" ] && [ "$warned" -lt "$trained" ] && ok || bad "a dry run: not said before [train]"
  grep -q "is checked once a point's shards are prepared" "$EXPECT_LOG" && bad "prepared shards called unprepared" || ok
  [ ! -e gap/r8 ] && ok || bad "a dry run made a point folder"
  expect_rc 0 "a dry run before cgprep" "$CGSWEEP" gap.yaml --out-dir gapdry --bin-dir pbin --launcher env \
    "${data[@]}" sample.band_gap=1.5 --dry-run
  expect_out "--dry-run: whether the training prompts state what the sample stages ask for \(band_gap, formula\) is \
checked once a point's shards are prepared, after its cgprep and before it trains \($T/gapdry/shards/data-[0-9a-f]+ \
holds none yet\)" "a dry run before cgprep says the check comes after it"
  [ "$(grep -c "is checked once a point's shards are prepared" "$EXPECT_LOG")" = 1 ] && ok ||
    bad "the check after cgprep not said in one line"
  grep -q "never state" "$EXPECT_LOG" && bad "a dry run warned without shards" || ok
  [ ! -e gapdry ] && ok || bad "a dry run made out_dir"
  expect_rc 0 "a dry run, every condition carried" "$CGSWEEP" gap8.yaml --out-dir gap --bin-dir pbin --launcher env \
    "${data[@]}" sample.spacegroup=225 --dry-run
  grep -qE "never state|is checked once a point|predate" "$EXPECT_LOG" && bad "a dry run on carried properties said \
something: $(grep -E "never state|is checked once|predate" "$EXPECT_LOG")" || ok
  # Shards of a cgprep older than property_counts: the check is skipped, said once per shards folder with what to do,
  # in a dry run and in a run (of points not run yet, their shards already prepared).
  "${3:-$BUILD/tests/launch/shard_without_counts}" gap/shards/data-*/train-*.h5 && ok || bad "shard_without_counts failed"
  predate() {
    echo "sweep point 0 \(r8\): the shards in $T/gap/shards/data-[0-9a-f]+ predate cgprep's record of the properties \
their crystals carry \(property_counts\), so whether its training prompts state $1 \(what its sample stage asks \
for\) is not checked; to have it checked, delete $T/gap/shards/data-[0-9a-f]+ so that the sweep prepares it again \
with this cgprep, or rerun cgprep $T/gap/r8/point.yaml"
  }
  expect_rc 0 "a dry run on shards of an older cgprep" "$CGSWEEP" gap8.yaml --out-dir gap --bin-dir pbin \
    --launcher env "${data[@]}" sample.band_gap=1.5 --dry-run
  expect_out "$(predate "band_gap, formula")" "a dry run says the older shards are not checked"
  [ "$(grep -c "predate" "$EXPECT_LOG")" = 1 ] && ok || bad "older shards not said once for one shards folder"
  grep -q "never state" "$EXPECT_LOG" && bad "warned from shards without counts" || ok
  expect_rc 0 "a run on shards of an older cgprep" "$CGSWEEP" gap8.yaml --out-dir gap --bin-dir pbin \
    --launcher env "${data[@]}" sample.spacegroup=225
  expect_out "$(predate "formula, spacegroup")" "a run says the older shards are not checked"
  [ "$(grep -c "predate" "$EXPECT_LOG")" = 1 ] && ok || bad "a run did not say it once for one shards folder"
  [ "$(cat gap/r16/status 2>/dev/null)" = done ] && ok || bad "a run on older shards: r16 $(cat gap/r16/status)"
fi

echo "$((n - fails))/$n cgsweep command-line checks passed"
[ "$fails" -eq 0 ]
