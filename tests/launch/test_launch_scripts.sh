#!/usr/bin/env bash
# Tests of the shell launchers: launch/run.sh's checks, environment and launch lines (dry runs with a stub
# nvidia-smi), its --help and one-process tools (cgprep: once, no mpirun), the config_get.sh extractor, the Slurm
# preemption path (requeue.sh and the real slurm.sbatch run with stub srun/scontrol/cgtrain: cgtrain exits 75 ->
# `scontrol requeue $SLURM_JOB_ID`, job exits 0), and
# signals to run.sh under mpirun (a stub mpirun; the real one too when installed): SIGTERM arrives as SIGUSR1.
# usage: test_launch_scripts.sh SOURCE_DIR
set -uo pipefail
SRC=$(cd "${1:?usage: test_launch_scripts.sh SOURCE_DIR}" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
EXPECT_LOG=$T/out
. "$(dirname "$0")/expect.sh"

# --- stubs ---------------------------------------------------------------------------------------------------
mkdir -p "$T/bin" "$T/gpu4" "$T/nogpu" "$T/build/trainer" "$T/hf_ok" "$T/hf_noconfig"
cat >"$T/gpu4/nvidia-smi" <<'EOF'
#!/usr/bin/env bash
for i in 0 1 2 3; do echo "GPU $i: NVIDIA H100 80GB HBM3 (UUID: GPU-$i)"; done
EOF
cat >"$T/nogpu/nvidia-smi" <<'EOF'
#!/usr/bin/env bash
echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." >&2; exit 9
EOF
echo '{}' >"$T/hf_ok/config.json"
touch "$T/hf_ok/model-00001-of-00001.safetensors"
cat >"$T/cpu.yaml" <<'EOF'
model:
  device: cpu    # where the model runs
  hf_dir: ""
parallel:
  tp: 2  # tensor parallel
  dp: 0
train:
  steps: 5
EOF
cat >"$T/cuda.yaml" <<'EOF'
model:
  device: "cuda"
  hf_dir: ''
parallel:
  tp: 4
EOF
chmod +x "$T"/gpu4/nvidia-smi "$T"/nogpu/nvidia-smi
RUN="$SRC/launch/run.sh"
export CG_CORES=8
unset OMP_NUM_THREADS NCCL_DEBUG CUDA_DEVICE_MAX_CONNECTIONS SLURM_JOB_ID

# --- bash -n on every script -----------------------------------------------------------------------------------
for f in launch/run.sh launch/slurm.sbatch launch/requeue.sh launch/forward.sh launch/config_get.sh scripts/demo.sh; do
  expect_rc 0 "bash -n $f" bash -n "$SRC/$f"
done

# --- config_get.sh ---------------------------------------------------------------------------------------------
source "$SRC/launch/config_get.sh"
[ "$(cg_yaml_get "$T/cpu.yaml" model device)" = cpu ] && ok || bad "cg_yaml_get model.device (comment stripped)"
[ "$(cg_yaml_get "$T/cpu.yaml" model hf_dir)" = "" ] && ok || bad "cg_yaml_get quoted empty"
[ "$(cg_yaml_get "$T/cuda.yaml" model device)" = cuda ] && ok || bad "cg_yaml_get double-quoted"
[ "$(cg_yaml_get "$T/cpu.yaml" train tp)" = "" ] && ok || bad "cg_yaml_get: a key of another section leaks"
[ "$(cg_config_get "$T/cpu.yaml" parallel.tp 1)" = 2 ] && ok || bad "cg_config_get from file"
# cg_merge_overrides: a later key=value replaces an earlier one of the same key where it stood (the tools refuse a
# key given twice on one command line); --key= and spaces around the key are the same key; words without '=' kept.
cg_merge_overrides model.device=cuda "train.lr=1e-4" --train.steps=5 x "data.columns=[a,b]" " model.device =cpu" \
  train.steps=7 train.lr_min=0 "y=a=b" "y=c"
[ "$(printf '<%s>' "${merged[@]}")" = "< model.device =cpu><train.lr=1e-4><train.steps=7><x><data.columns=[a,b]>\
<train.lr_min=0><y=c>" ] && ok || bad "cg_merge_overrides: $(printf '<%s>' "${merged[@]}")"
cg_merge_overrides; [ ${#merged[@]} = 0 ] && ok || bad "cg_merge_overrides of nothing"
# A key given twice on one command line is refused as the tools refuse it (the C++ message, word for word: run.sh
# would otherwise size the job from the last value of a line cgtrain then refuses); --key= and spaces around the key
# are the same key; cg_merge_overrides' output, one word per key, passes.
got=$(cg_config_get "$T/cpu.yaml" parallel.tp 1 parallel.tp=4 train.lr=1 parallel.tp=8 2>&1); rc=$?
[ "$rc" = 2 ] && [ "$got" = "parallel.tp is given twice on the command line (4, then 8): give it once" ] && ok ||
  bad "a key twice: rc $rc, got [$got]"
got=$(cg_config_get "$T/cpu.yaml" lora.r 8 "--train.lr=1e-4" x " train.lr =2e-4" 2>&1); rc=$?
[ "$rc" = 2 ] && [ "$got" = "train.lr is given twice on the command line (1e-4, then 2e-4): give it once" ] && ok ||
  bad "another key twice, spelt otherwise: rc $rc, got [$got]"
[ -z "$(cg_repeated_override a.b=1 a.bc=1 x x --a.c=1)" ] && ok || bad "cg_repeated_override: distinct keys"
[ "$(cg_config_get "$T/cpu.yaml" parallel.tp 1 " --parallel.tp=4")" = 2 ] && ok ||
  bad "' --key' is not the key (the tools drop -- before trimming)"
[ "$(cg_config_get "$T/cpu.yaml" parallel.tp 1 " parallel.tp = 4")" = 4 ] && ok || bad "spaces around the key"
cg_merge_overrides parallel.tp=4 train.lr=1 parallel.tp=8
[ "$(cg_config_get "$T/cpu.yaml" parallel.tp 1 "${merged[@]}")" = 8 ] && ok || bad "merged overrides pass"
# The key as the tools' split_override reads it (cgtrain checked by hand): a leading -- dropped, then spaces, tabs,
# CR and LF around it; \v and \f stay in the key (an unknown key to cgtrain), so such a word is another key: neither
# merged nor "given twice" (they were: [:space:] trimmed them).
cg_merge_overrides parallel.tp=4 " --parallel.tp=8" $'--parallel.tp\t=6' $'parallel.tp\v=2' $'\fparallel.tp=3'
[ "$(printf '<%s>' "${merged[@]}")" = "$(printf '<%s>' $'--parallel.tp\t=6' " --parallel.tp=8" $'parallel.tp\v=2' \
  $'\fparallel.tp=3')" ] && ok || bad "cg_merge_overrides, keys as the tools read them: $(printf '<%q>' "${merged[@]}")"
[ -z "$(cg_repeated_override parallel.tp=4 $'parallel.tp\v=2' $'\fparallel.tp=3')" ] && ok ||
  bad "cg_repeated_override: \\v, \\f stay in the key"
[ "$(cg_repeated_override parallel.tp=4 $'--\r\nparallel.tp\t=2')" = \
  "parallel.tp is given twice on the command line (4, then 2): give it once" ] && ok ||
  bad "cg_repeated_override: CR, LF, tab trimmed"
[ "$(cg_config_get "$T/cpu.yaml" lora.r 8)" = 8 ] && ok || bad "default when absent"
# YAML's quoting: "..." with \" and \\ escapes, '...' with '' for a quote, spaces inside quotes kept, '#' inside
# quotes no comment.
cat >"$T/quoted.yaml" <<'EOF'
model:
  hf_dir: "/x/q\"hf"   # escaped double quote
  device: '/x/it''s hf'   # doubled single quote
  a: "  spaced  "
  b: '"x"'
  c: "back\\slash # not a comment"
  d: 'a # b'
EOF
for kv in 'hf_dir=/x/q"hf' "device=/x/it's hf" 'a=  spaced  ' 'b="x"' 'c=back\slash # not a comment' 'd=a # b'; do
  got=$(cg_yaml_get "$T/quoted.yaml" model "${kv%%=*}")
  [ "$got" = "${kv#*=}" ] && ok || bad "cg_yaml_get model.${kv%%=*}: got [$got], want [${kv#*=}]"
done
[ "$(cg_config_get "$T/quoted.yaml" model.b x)" = '"x"' ] && ok || bad "cg_config_get keeps quotes inside a value"
[ "$(cg_config_get "$T/quoted.yaml" model.b x 'model.b="y z"')" = "y z" ] && ok || bad "a quoted override"
[ "$(cg_config_get "$T/quoted.yaml" model.b x '--model.b=w')" = "w" ] && ok || bad "a --key=value override"
# YAML's other escapes, as the tools decode them (yaml-cpp; PyYAML reads the same): \u00e9 is the folder café, not
# cafu00e9 (run.sh checked a folder the tool would not open).
esc='"/x/caf\u00e9\x41\/\U0001F600\ttab"'
[ "$(cg_config_get "" model.hf_dir "" "model.hf_dir=$esc")" = "$(printf '/x/caf\303\251A/\360\237\230\200\ttab')" ] &&
  ok || bad "YAML escapes in an override: got [$(cg_config_get "" model.hf_dir "" "model.hf_dir=$esc")]"
printf 'model:\n  hf_dir: %s  # a comment\n' "$esc" >"$T/escaped.yaml"
[ "$(cg_yaml_get "$T/escaped.yaml" model hf_dir)" = "$(printf '/x/caf\303\251A/\360\237\230\200\ttab')" ] &&
  ok || bad "YAML escapes in a file: got [$(cg_yaml_get "$T/escaped.yaml" model hf_dir)]"
# Overrides read as the tools read them (trainer/config_values.cpp): trimmed, YAML's quotes decoded, '#' no comment.
for kv in "model.b='it''s'|it's" 'model.b= "a\"b\\c" |a"b\c' 'model.b=  plain text  |plain text' \
  'model.b=a # b|a # b' 'model.b=x"y|x"y'; do
  got=$(cg_config_get "$T/quoted.yaml" model.b x "${kv%%|*}")
  [ "$got" = "${kv#*|}" ] && ok || bad "cg_config_get ${kv%%|*}: got [$got], want [${kv#*|}]"
done

# --- demo.sh's results: a run without validation (train.val_every=0) is said so, not a failure -------------------
# loss_line, taken from demo.sh, under demo.sh's own shell options.
sed -n '/^loss_line() {/,/^}/p' "$SRC/scripts/demo.sh" >"$T/loss_line.sh"
printf '{"step":1,"loss":2.5,"lr":0.001}\n{"step":2,"loss":2.25,"lr":0.001}\n' >"$T/noval.jsonl"  # as cgtrain writes
printf '{"step":1,"loss":2.5}\n{"step":1,"val_loss":2.75}\n{"step":2,"loss":2.25}\n{"step":2,"val_loss":2.5}\n' \
  >"$T/val.jsonl"
expect_rc 0 "demo's loss line without validation" bash -c 'set -euo pipefail; . "$1"; loss_line "$2"; echo after' \
  sh "$T/loss_line.sh" "$T/noval.jsonl"
expect_out "final train loss: 2.25   best val loss: none \(no validation ran: train.val_every=0\?\)" "no val loss said"
expect_out "^after$" "the demo goes on after the loss line"
expect_rc 0 "demo's loss line with validation" bash -c 'set -euo pipefail; . "$1"; loss_line "$2"' sh \
  "$T/loss_line.sh" "$T/val.jsonl"
expect_out "final train loss: 2.25   best val loss: 2.5$" "best val loss"

# --- run.sh: single node CPU -----------------------------------------------------------------------------------
export CG_NVIDIA_SMI="$T/nogpu/nvidia-smi"
expect_rc 0 "cpu dry run" "$RUN" --dry-run --bin-dir "$T/build" "$T/cpu.yaml"
expect_out "world 2 \(tp 2, dp 1\), device cpu, OMP_NUM_THREADS=4" "cpu: 8 cores / 2 ranks"
expect_out "mpirun --bind-to none .*-x OMP_NUM_THREADS .*--oversubscribe -np 2 cgtrain .*cpu.yaml$" "cpu mpirun line"
expect_rc 0 "override tp" "$RUN" --dry-run --np 4 "$T/cpu.yaml" parallel.tp=4 train.steps=1
expect_out "world 4 \(tp 4, dp 1\).*OMP_NUM_THREADS=2" "override tp=4, np 4"
expect_out "cgtrain .*cpu.yaml parallel.tp=4 train.steps=1$" "overrides passed on to the tool"
expect_rc 2 "tp not dividing world" "$RUN" --dry-run --np 3 "$T/cpu.yaml"
expect_out "parallel.tp 2 does not divide world 3" "tp/world message"
expect_rc 2 "a key twice" "$RUN" --dry-run --np 4 "$T/cpu.yaml" parallel.tp=4 --parallel.tp=2
expect_out "^run.sh: error: parallel.tp is given twice on the command line \(4, then 2\): give it once$" \
  "a key twice, as the tools say it"
expect_rc 2 "tp*dp != world" "$RUN" --dry-run --np 4 "$T/cpu.yaml" parallel.dp=3
expect_out "parallel.tp 2 x parallel.dp 3 = 6 but world is 4" "dp message"
expect_rc 2 "tp not in plain digits" "$RUN" --dry-run --np 4 "$T/cpu.yaml" parallel.tp=2.0
expect_out "parallel.tp must be a positive integer in plain digits \(e.g. 2\), got '2.0'" "tp 2.0 named"
# bash's arithmetic reads 010 as 8, so tp 2 x dp 010 passed the world check of 16 ranks; cgtrain refuses 010 itself.
expect_rc 2 "dp with a leading zero" "$RUN" --dry-run --np 16 "$T/cpu.yaml" parallel.dp=010
expect_out "parallel.dp must be a non-negative integer in plain digits .*got '010'" "dp 010 named"
expect_rc 2 "missing hf dir" "$RUN" --dry-run "$T/cpu.yaml" model.hf_dir="$T/nope"
expect_out "model.hf_dir '.*nope' is not a folder" "hf dir message"
expect_rc 2 "hf dir without config.json" "$RUN" --dry-run "$T/cpu.yaml" model.hf_dir="$T/hf_noconfig"
expect_out "has no config.json" "config.json message"
# An adapter or a cgtrain folder given as the base is named as such (as cgtrain and cgsample name it).
mkdir -p "$T/peft_dir" "$T/run_dir/checkpoints"
echo '{}' >"$T/peft_dir/adapter_config.json"
expect_rc 2 "a PEFT adapter as model.hf_dir" "$RUN" --dry-run "$T/cpu.yaml" model.hf_dir="$T/peft_dir"
expect_out "it is a PEFT adapter folder \(adapter_config.json\), not a base model: give it as sample.adapter" \
  "adapter as hf_dir named"
expect_rc 2 "a run folder as model.hf_dir" "$RUN" --dry-run "$T/cpu.yaml" model.hf_dir="$T/run_dir"
expect_out "it is a cgtrain run or checkpoint folder, not a base model" "run folder as hf_dir named"
expect_rc 0 "good hf dir" "$RUN" --dry-run "$T/cpu.yaml" model.hf_dir="$T/hf_ok"
mkdir -p "$T/it's hf"
echo '{}' >"$T/it's hf/config.json"
printf "model:\n  device: cpu\n  hf_dir: '%s'\n" "$(printf '%s' "$T/it's hf" | sed "s/'/''/g")" >"$T/quoted_hf.yaml"
expect_rc 0 "an hf_dir in single quotes with a doubled quote" "$RUN" --dry-run "$T/quoted_hf.yaml"
expect_rc 2 "missing binary without --dry-run" "$RUN" --bin-dir "$T/build" "$T/cpu.yaml"
expect_out "cannot find cgtrain under" "binary message"
expect_rc 2 "missing config" "$RUN" --dry-run "$T/none.yaml"
expect_rc 2 "backend nccl on CPU ranks" "$RUN" --dry-run "$T/cpu.yaml" parallel.backend=nccl
expect_out "parallel.backend=nccl needs a GPU per rank .*set parallel.backend=mpi" "nccl on cpu message"

# --- run.sh: which argument is the config ------------------------------------------------------------------------
# The first existing .yaml/.yml file, whatever its path holds ('=' in a folder or file name, a leading '-'); then
# key=value and --key=value overrides, as the tools take them.
mkdir -p "$T/lr=1e-3"
cp "$T/cpu.yaml" "$T/lr=1e-3/cfg.yaml"
cp "$T/cpu.yaml" "$T/lr=2.yaml"
cp "$T/cpu.yaml" "$T/-dash.yaml"
expect_rc 0 "a config under a folder with '='" "$RUN" --dry-run "$T/lr=1e-3/cfg.yaml" train.steps=2
expect_out "cgtrain $T/lr=1e-3/cfg.yaml train.steps=2$" "the config path with '=' is the config"
expect_rc 0 "./lr=2.yaml" sh -c 'cd "$1" && "$2" --dry-run ./lr=2.yaml' sh "$T" "$RUN"
expect_out "cgtrain ./lr=2.yaml$" "a config named with '=' is the config"
expect_rc 0 "-dash.yaml" sh -c 'cd "$1" && "$2" --dry-run -dash.yaml' sh "$T" "$RUN"
expect_out "cgtrain -dash.yaml$" "a config whose name starts with '-' is the config"
expect_rc 0 "--key=value overrides" "$RUN" --dry-run --np 4 "$T/cpu.yaml" --parallel.tp=4
expect_out "world 4 \(tp 4, dp 1\)" "--parallel.tp=4 is read like parallel.tp=4"
expect_out "cgtrain .*cpu.yaml --parallel.tp=4$" "--key=value passed on to the tool"
expect_rc 2 "an unknown option" "$RUN" --dry-run --frobnicate "$T/cpu.yaml"
expect_out "unknown option '--frobnicate'" "unknown option message"
expect_rc 2 "a missing .yaml" "$RUN" --dry-run "$T/nosuch=1.yaml"
expect_out "config file '.*nosuch=1.yaml' not found" "missing config named"

# --- run.sh: the build folder is the one beside the script, not ./build of the current folder ---------------------
mkdir -p "$T/repo/launch" "$T/repo/build/trainer"
cp "$SRC/launch/run.sh" "$SRC/launch/config_get.sh" "$SRC/launch/forward.sh" "$T/repo/launch/"
printf '#!/bin/sh\nexit 0\n' >"$T/repo/build/trainer/cgtrain"
chmod +x "$T/repo/build/trainer/cgtrain"
expect_rc 0 "run.sh from another folder" sh -c 'cd / && "$1" --dry-run "$2"' sh "$T/repo/launch/run.sh" "$T/cpu.yaml"
expect_out "-np 2 $T/repo/build/trainer/cgtrain $T/cpu.yaml$" "the tool of the script's own build folder"
expect_rc 0 "CG_BIN_DIR still wins" env CG_BIN_DIR="$T/build" "$T/repo/launch/run.sh" --dry-run "$T/cpu.yaml"
expect_out "-np 2 cgtrain $T/cpu.yaml$" "CG_BIN_DIR over the script's build folder"

# --- run.sh: --help prints the whole header; one-process tools run once, without mpirun ------------------------
expect_rc 0 "run.sh --help" "$RUN" --help
expect_out "^Tests: CG_NVIDIA_SMI \(default nvidia-smi\) and CG_CORES \(default nproc\) can be pointed elsewhere\.$" \
  "--help ends with the header's last line"
[ "$(grep -c '' "$T/out")" = "$(awk 'NR > 1 && !/^#/ { exit } NR > 1' "$RUN" | grep -c '')" ] && ok ||
  bad "--help is not the whole header comment"
mkdir -p "$T/build/data"
cat >"$T/build/data/cgprep" <<EOF
#!/usr/bin/env bash
echo "cgprep \$*" >>"$T/cgprep.calls"
EOF
chmod +x "$T/build/data/cgprep"
rm -f "$T/cgprep.calls"
expect_rc 0 "cgprep through run.sh" "$RUN" --bin-dir "$T/build" cgprep "$T/cpu.yaml" data.shards_dir="$T/x" \
  data.max_rows=300
[ "$(cat "$T/cgprep.calls" 2>/dev/null)" = "cgprep $T/cpu.yaml data.shards_dir=$T/x data.max_rows=300" ] && ok ||
  bad "cgprep should run once, without mpirun: $(cat "$T/cgprep.calls" 2>/dev/null)"
expect_out "cgprep is not an MPI program" "one-process message"
expect_rc 0 "cgprep dry run" "$RUN" --dry-run --np 4 cgprep "$T/cpu.yaml"
if grep -q mpirun "$T/out"; then bad "cgprep dry run names mpirun: $(cat "$T/out")"; else ok; fi
expect_rc 2 "cgtok through run.sh" "$RUN" cgtok llama-js x y
expect_out "cgtok takes no config and is no MPI program: run it directly" "cgtok is run directly"

# --- run.sh: GPUs ----------------------------------------------------------------------------------------------
expect_rc 2 "cuda without GPU" "$RUN" --dry-run "$T/cuda.yaml"
expect_out "model.device=cuda but no GPU is visible" "no GPU message"
export CG_NVIDIA_SMI="$T/gpu4/nvidia-smi"
expect_rc 0 "cuda, 4 GPUs" "$RUN" --dry-run "$T/cuda.yaml"
expect_out "world 4 \(tp 4, dp 1\), device cuda, OMP_NUM_THREADS=2" "one rank per GPU by default"
expect_out "-x NCCL_DEBUG" "NCCL env forwarded"
expect_out "-x CUDA_DEVICE_MAX_CONNECTIONS" "CUDA_DEVICE_MAX_CONNECTIONS forwarded"
expect_rc 0 "device auto picks cuda" "$RUN" --dry-run "$T/cpu.yaml" model.device=auto
expect_out "device cuda" "auto -> cuda when GPUs are visible"
expect_rc 2 "tp > GPUs per node" "$RUN" --dry-run "$T/cuda.yaml" parallel.tp=8
expect_out "parallel.tp 8 is larger than the 4 GPUs per node" "tp > GPUs message"
printf 'node01 slots=4\n# spare\nnode02 slots=4\n\n' >"$T/hosts"
expect_rc 0 "hostfile, 2 nodes" "$RUN" --dry-run --hostfile "$T/hosts" "$T/cuda.yaml" parallel.tp=2
expect_out "2 node\(s\) x 4 ranks = world 8 \(tp 2, dp 4\)" "multi-node grid"
expect_out "--hostfile .*hosts --map-by ppr:4:node -np 8" "multi-node mpirun line"
expect_rc 2 "tp group spanning nodes" "$RUN" --dry-run --hostfile "$T/hosts" --ppn 2 "$T/cuda.yaml"
expect_out "larger than|does not divide the 2 ranks per node" "tp across nodes message"
# CPU ranks per node from the hostfile's slots=: none gives 1 per node (and says so when tp does not divide it);
# counts that differ between lines are refused, not taken from the first line.
printf 'n1\nn2   # spare\n' >"$T/hosts_noslots"
expect_rc 2 "hostfile without slots=" "$RUN" --dry-run --hostfile "$T/hosts_noslots" "$T/cpu.yaml"
expect_out "parallel.tp 2 does not divide the 1 ranks per node \(2 node\(s\) x 1 ranks; ranks per node from a hostfile without slots= \(1 per node\)\).*\(slots=N in the hostfile or --ppn N\)" \
  "no slots=: where the count came from and what to change"
expect_rc 0 "hostfile without slots=, --ppn 2" "$RUN" --dry-run --hostfile "$T/hosts_noslots" --ppn 2 "$T/cpu.yaml"
expect_out "2 node\(s\) x 2 ranks = world 4 \(tp 2, dp 2\)" "--ppn over a hostfile without slots="
printf 'n1 slots=8\nn2 slots=4\n' >"$T/hosts_mixed"
expect_rc 2 "hostfile with mixed slots=" "$RUN" --dry-run --hostfile "$T/hosts_mixed" "$T/cpu.yaml"
expect_out "hostfile '.*hosts_mixed' gives its nodes different slot counts \(n1 slots=8, n2 slots=4\).*pass --ppn N" \
  "mixed slots= refused"
printf 'n1 slots=8\nn2\n' >"$T/hosts_half"
expect_rc 2 "hostfile with slots= on one line only" "$RUN" --dry-run --hostfile "$T/hosts_half" "$T/cpu.yaml"
expect_out "different slot counts \(n1 slots=8, n2\)" "a line without slots= among lines with it"
expect_rc 0 "hostfile with mixed slots=, --ppn 4" "$RUN" --dry-run --hostfile "$T/hosts_mixed" --ppn 4 "$T/cpu.yaml"
expect_out "2 node\(s\) x 4 ranks = world 8 \(tp 2, dp 4\)" "--ppn over mixed slots="
printf 'n1 slots=2\nn2 slots=2\n' >"$T/hosts_two"
expect_rc 0 "hostfile with equal slots=" "$RUN" --dry-run --hostfile "$T/hosts_two" "$T/cpu.yaml"
expect_out "2 node\(s\) x 2 ranks = world 4 \(tp 2, dp 2\)" "slots=2 on every line"
# max_slots= is not slots=, whether every line has it or one only; a trailing comment is no part of the line.
printf 'n1 slots=2 max_slots=4\nn2 slots=2 max_slots=4\n' >"$T/hosts_max"
expect_rc 0 "hostfile with max_slots=" "$RUN" --dry-run --hostfile "$T/hosts_max" "$T/cpu.yaml"
expect_out "2 node\(s\) x 2 ranks = world 4 \(tp 2, dp 2\)" "max_slots= not read as slots="
printf 'n1 slots=2 max_slots=4\nn2 slots=2 # slots=8 once\n' >"$T/hosts_max1"
expect_rc 0 "hostfile with max_slots= on one line" "$RUN" --dry-run --hostfile "$T/hosts_max1" "$T/cpu.yaml"
expect_out "2 node\(s\) x 2 ranks = world 4 \(tp 2, dp 2\)" "max_slots= and a comment on one line only"
# One host on two lines is one node to mpirun (slots added): refused, not counted as two nodes.
printf 'n1 slots=2\nn2 slots=2\nn1 slots=2\n' >"$T/hosts_dup"
expect_rc 2 "hostfile listing a node twice" "$RUN" --dry-run --hostfile "$T/hosts_dup" "$T/cpu.yaml"
expect_out "hostfile '.*hosts_dup' lists n1 on more than one line; mpirun takes such lines as one node" \
  "a node listed twice is named"
expect_rc 2 "tp not dividing world, --np" "$RUN" --dry-run --np 3 "$T/cpu.yaml"
expect_out "ranks per node from --np\); change parallel.tp or the rank count \(--np N\)" "--np named"

# --- requeue.sh ------------------------------------------------------------------------------------------------
cat >"$T/bin/scontrol" <<EOF
#!/usr/bin/env bash
echo "\$*" >>"$T/scontrol.calls"
EOF
chmod +x "$T/bin/scontrol"
source "$SRC/launch/requeue.sh"
preempted() { echo "cgtrain stub: saved step-7, exiting 75"; return 75; }
failing() { return 3; }
(
  export PATH="$T/bin:$PATH" SLURM_JOB_ID=4242
  rm -f "$T/scontrol.calls"
  expect_rc 0 "requeue on 75" cg_run_with_requeue preempted
  expect_out "requeue: preempted \(exit 75\): the run saved its state, or its unfinished stage is redone on restart; requeueing job 4242 \(restart 1\)" \
    "the requeue line holds for cgtrain and for a cgsweep stage"
  [ "$(cat "$T/scontrol.calls" 2>/dev/null)" = "requeue 4242" ] && ok || bad "scontrol requeue 4242 not called"
  rm -f "$T/scontrol.calls"
  expect_rc 0 "success passes" cg_run_with_requeue true
  expect_rc 0 "a TMPDIR that does not exist: the pipe goes to /tmp" env TMPDIR="$T/no/such/dir" \
    bash -c "source '$SRC/launch/requeue.sh'; cg_run_with_requeue true"
  expect_rc 3 "failure passes its status" cg_run_with_requeue failing
  [ ! -f "$T/scontrol.calls" ] && ok || bad "scontrol called without preemption"
  expect_rc 75 "restart cap" env SLURM_RESTART_COUNT=50 bash -c "source '$SRC/launch/requeue.sh'; cg_run_with_requeue bash -c 'exit 75'"
  [ ! -f "$T/scontrol.calls" ] && ok || bad "requeued past CG_MAX_REQUEUES"
  # A stop signal that kills the command (a rank before its handlers are up: default action) is a preemption too.
  # The commands write their pid to $T/cmd.pid once they run (and have set their trap); the shell sets its own traps
  # before it starts them, so the signal is sent only then, whatever the load (a fixed 0.5 s wait was not always
  # enough). `sleeper` dies of the signal; `saver RC` takes USR1 and exits RC, its pid written in a loop bash has
  # parsed whole (see wait_for_signal in test_sweep_runner.cpp).
  printf '#!/usr/bin/env bash\necho $$ >"%s"\nexec sleep 60\n' "$T/cmd.pid" >"$T/sleeper"
  printf '%s\n' '#!/usr/bin/env bash' "trap 'got=1' USR1" 'for ((i = 0; i < 600 && ! got; i++)); do' \
    "  ((i > 0)) || echo \$\$ >\"$T/cmd.pid\"" '  sleep 0.1' 'done' 'exit "$1"' >"$T/saver"
  chmod +x "$T/sleeper" "$T/saver"
  signalled_shell() {  # signalled_shell SIG CMD...: cg_run_with_requeue CMD in a shell that gets SIG once CMD runs
    local sig=$1 shell i
    shift
    rm -f "$T/cmd.pid"
    bash -c "source '$SRC/launch/requeue.sh'; cg_run_with_requeue \"\$@\"" bash "$@" >"$T/requeue.out" 2>&1 &
    shell=$!
    for i in $(seq 600); do [ -s "$T/cmd.pid" ] && break; sleep 0.1; done
    kill -"$sig" "$shell"
    [ "$sig" = USR1 ] || kill -"$sig" "$(cat "$T/cmd.pid")"  # TERM: Slurm signals every process of the job itself
    wait "$shell"
  }
  rm -f "$T/scontrol.calls"
  expect_rc 0 "a command killed by the USR1 passed on is requeued" signalled_shell USR1 "$T/sleeper"
  cp "$T/requeue.out" "$EXPECT_LOG"
  expect_out "requeue: $T/sleeper exited 138 after SIGUSR1 reached it \(a rank still starting up, before its signal handlers, is stopped by it without saving\); treating it as preempted" \
    "the killed command's status is named with the signal"
  [ "$(cat "$T/scontrol.calls" 2>/dev/null)" = "requeue 4242" ] && ok || bad "killed by USR1: not requeued"
  rm -f "$T/scontrol.calls"
  expect_rc 0 "a command killed by Slurm's TERM is requeued" signalled_shell TERM "$T/sleeper"
  [ "$(cat "$T/scontrol.calls" 2>/dev/null)" = "requeue 4242" ] && ok || bad "killed by TERM: not requeued"
  rm -f "$T/scontrol.calls"
  expect_rc 0 "a command that ends well after USR1 is not requeued" signalled_shell USR1 "$T/saver" 0
  [ ! -f "$T/scontrol.calls" ] && ok || bad "a command that finished after USR1 was requeued"
  expect_rc 2 "a command's own failure after USR1 is not requeued" signalled_shell USR1 "$T/saver" 2
  [ ! -f "$T/scontrol.calls" ] && ok || bad "a command that failed on its own (exit 2) after USR1 was requeued"
  # A USR1 that comes once requeue.sh is sourced but before the command starts (the batch script still setting up)
  # is kept: the command is not started and the job is requeued, instead of the shell ending with 138, unrequeued.
  rm -f "$T/scontrol.calls" "$T/cmd.pid"
  expect_rc 0 "USR1 before the command starts: requeued, the command not started" bash -c \
    "source '$SRC/launch/requeue.sh'; kill -USR1 \$\$; cg_run_with_requeue '$T/sleeper'"
  expect_out "requeue: got SIGUSR1 before $T/sleeper started: not starting it \(nothing ran, nothing to save\); exiting 75" \
    "the command not started is said"
  [ ! -e "$T/cmd.pid" ] && ok || bad "USR1 before the start: the command was started all the same"
  [ "$(cat "$T/scontrol.calls" 2>/dev/null)" = "requeue 4242" ] && ok || bad "USR1 before the start: not requeued"
  exit $fails
) || fails=$((fails + $?))
expect_rc 75 "75 outside Slurm is passed on" cg_run_with_requeue preempted
# A signal that kept one command from starting is taken by it: running the command again in the same shell (as
# the message says) starts it, instead of being refused for the same signal again and again.
rm -f "$T/second"
expect_rc 0 "after a USR1 kept a command from starting, the next one runs" bash -c \
  "source '$SRC/launch/requeue.sh'; kill -USR1 \$\$; cg_run_with_requeue true; cg_run_with_requeue touch '$T/second'"
[ -e "$T/second" ] && ok || bad "the command run again after a USR1 that kept it from starting was not started"

# --- the real slurm.sbatch, preempted: stub srun runs the tool, stub cgtrain exits 75 --------------------------
cat >"$T/build/trainer/cgtrain" <<EOF
#!/usr/bin/env bash
echo "cgtrain \$* OMP_NUM_THREADS=\$OMP_NUM_THREADS" >>"$T/cgtrain.calls"
exit \${CGTRAIN_STUB_RC:-75}
EOF
cat >"$T/bin/srun" <<EOF
#!/usr/bin/env bash
echo "srun \$*" >>"$T/srun.calls"
while [ \$# -gt 0 ] && [ "\${1#-}" != "\$1" ]; do shift; done
exec "\$@"
EOF
chmod +x "$T/build/trainer/cgtrain" "$T/bin/srun"
sbatch_env=(env PATH="$T/bin:$PATH" CG_ROOT="$SRC" CG_BIN_DIR="$T/build" SLURM_JOB_ID=777 SLURM_JOB_NUM_NODES=2
            SLURM_NTASKS_PER_NODE="2(x2)" SLURM_CPUS_PER_TASK=3 CG_NVIDIA_SMI="$T/nogpu/nvidia-smi")
rm -f "$T"/*.calls
expect_rc 0 "slurm.sbatch requeues a preempted run" "${sbatch_env[@]}" bash "$SRC/launch/slurm.sbatch" "$T/cpu.yaml" train.steps=9
[ "$(cat "$T/scontrol.calls" 2>/dev/null)" = "requeue 777" ] && ok || bad "slurm.sbatch did not call scontrol requeue 777"
grep -q -- "--nodes=2 --ntasks-per-node=2 --ntasks=4 " "$T/srun.calls" && ok || bad "srun line: $(cat "$T/srun.calls")"
grep -q "cpu.yaml train.steps=9 OMP_NUM_THREADS=3" "$T/cgtrain.calls" && ok || bad "cgtrain call: $(cat "$T/cgtrain.calls")"
rm -f "$T"/*.calls
expect_rc 0 "slurm.sbatch, run finished" "${sbatch_env[@]}" CGTRAIN_STUB_RC=0 bash "$SRC/launch/slurm.sbatch" "$T/cpu.yaml"
[ ! -f "$T/scontrol.calls" ] && ok || bad "finished run was requeued"
expect_rc 1 "slurm.sbatch, run failed" "${sbatch_env[@]}" CGTRAIN_STUB_RC=1 bash "$SRC/launch/slurm.sbatch" "$T/cpu.yaml"
[ ! -f "$T/scontrol.calls" ] && ok || bad "failed run was requeued"

# CG_LAUNCH=mpirun without --ntasks-per-node: the script's own message, not bash's "unbound variable".
expect_rc 2 "slurm.sbatch, mpirun without ntasks-per-node" env -u SLURM_NTASKS_PER_NODE PATH="$T/bin:$PATH" \
  CG_ROOT="$SRC" CG_BIN_DIR="$T/build" SLURM_JOB_ID=778 SLURM_JOB_NODELIST=node01 CG_LAUNCH=mpirun \
  bash "$SRC/launch/slurm.sbatch" "$T/cpu.yaml"
expect_out "slurm.sbatch: CG_LAUNCH=mpirun needs the ranks per node: set #SBATCH --ntasks-per-node" "ntasks message"
if grep -q "unbound variable" "$T/out"; then bad "slurm.sbatch: bare unbound variable: $(cat "$T/out")"; else ok; fi

# --- run.sh under mpirun: SIGTERM / SIGUSR1 to run.sh reach mpirun as SIGUSR1 ----------------------------------
# The stub answers like OpenMPI 4.1: SIGTERM kills the job (exit 1), SIGUSR1 is forwarded to the ranks (cgtrain
# saves and exits 75). For the real mpirun, ranks that save on SIGUSR1 like cgtrain.
mkdir -p "$T/fakempi" "$T/mpibuild/trainer"
for f in "$T/fakempi/mpirun" "$T/mpibuild/trainer/cgtrain"; do
  cat >"$f" <<EOF
#!/usr/bin/env bash
trap 'echo USR1 >>"$T/got"; exit 75' USR1
trap 'echo TERM >>"$T/got"; exit 1' TERM
for ((i = 0; i < 300; i++)); do  # written in a loop bash has parsed: see wait_for_signal in test_sweep_runner.cpp
  ((i > 0)) || echo started >>"$T/started"
  sleep 0.1
done
exit 3
EOF
  chmod +x "$f"
done
# signal_run SIG STARTED BIN_DIR [PATH_FIRST]: run.sh in the background (output in $T/run.out); once STARTED lines
# are in $T/started, send it SIG; return its exit status.
signal_run() {
  local sig=$1 started=$2 bin=$3 path=${4:+$4:}$PATH pid i
  rm -f "$T/started" "$T/got"
  env PATH="$path" CG_NVIDIA_SMI="$T/nogpu/nvidia-smi" "$RUN" --bin-dir "$bin" "$T/cpu.yaml" >"$T/run.out" 2>&1 &
  pid=$!
  for i in $(seq 150); do [ "$(cat "$T/started" 2>/dev/null | wc -l)" -ge "$started" ] && break; sleep 0.1; done
  kill -"$sig" "$pid"
  wait "$pid"
}
for sig in TERM USR1; do
  expect_rc 75 "$sig to run.sh under (stub) mpirun: exit 75" signal_run "$sig" 1 "$T/build" "$T/fakempi"
  [ "$(cat "$T/got" 2>/dev/null)" = USR1 ] && ok ||
    bad "$sig to run.sh: mpirun got '$(cat "$T/got" 2>/dev/null)', want USR1"
done
# An mpirun that the signal ends before its handlers are up (here one without any) is a preemption too: 75, said.
mkdir -p "$T/diempi"
printf '#!/usr/bin/env bash\necho started >>"%s"\nexec sleep 60\n' "$T/started" >"$T/diempi/mpirun"
chmod +x "$T/diempi/mpirun"
expect_rc 75 "mpirun ended by the USR1 passed on: exit 75" signal_run USR1 1 "$T/build" "$T/diempi"
cp "$T/run.out" "$EXPECT_LOG"
expect_out "run.sh: mpirun exited 138 after SIGUSR1 reached it or a cgtrain rank while starting up \(before its signal handlers\); exiting 75" \
  "mpirun ended by the signal: said"
# A stop signal while run.sh still checks the setup (held here in its nvidia-smi call, which says when it runs and
# waits for a line on a pipe) is kept: mpirun is not started and run.sh exits 75 (preempted), not 138/143 (ended by
# the signal: on Slurm a job that is not requeued).
mkdir -p "$T/slowsmi"
mkfifo "$T/smi.running" "$T/smi.go"
printf '#!/usr/bin/env bash\necho >"%s"\nread -r _ <"%s"\nexit 9\n' "$T/smi.running" "$T/smi.go" >"$T/slowsmi/nvidia-smi"
chmod +x "$T/slowsmi/nvidia-smi"
signal_during_checks() {  # signal_during_checks SIG: run.sh's exit status
  local pid
  rm -f "$T/started" "$T/got"
  env PATH="$T/fakempi:$PATH" CG_NVIDIA_SMI="$T/slowsmi/nvidia-smi" "$RUN" --bin-dir "$T/build" "$T/cpu.yaml" &
  pid=$!
  read -r _ <"$T/smi.running"
  kill -"$1" "$pid"
  echo go >"$T/smi.go"
  wait "$pid"
}
for sig in TERM USR1; do
  expect_rc 75 "$sig to run.sh during its checks: exit 75" signal_during_checks "$sig"
  expect_out "run.sh: got SIG$sig before mpirun started: not starting it \(nothing ran, nothing to save\); exiting 75" \
    "$sig during the checks: mpirun not started, said"
  [ ! -e "$T/started" ] && [ ! -e "$T/got" ] && ok || bad "$sig to run.sh during its checks: mpirun was started"
done
if command -v mpirun >/dev/null 2>&1; then  # the real one: SIGUSR1 reaches both ranks, their 75 comes back
  expect_rc 75 "TERM to run.sh under mpirun: exit 75" signal_run TERM 2 "$T/mpibuild"
  [ "$(sort "$T/got" 2>/dev/null | uniq -c | tr -s ' ')" = " 2 USR1" ] && ok ||
    bad "TERM to run.sh under mpirun: the ranks got '$(cat "$T/got" 2>/dev/null)', want USR1 twice; $(cat "$T/run.out")"
else
  echo "mpirun not installed: run.sh checked with a stub mpirun only"
fi

# --- slurm.sbatch submitted from outside the repository -----------------------------------------------------------
# sbatch runs a copy of the script from its spool folder: the repository is CG_ROOT, else the submit folder, and a
# wrong one is said with what to set, not bash's "No such file or directory" and "command not found" (exit 127).
mkdir -p "$T/spool" "$T/elsewhere"
cp "$SRC/launch/slurm.sbatch" "$T/spool/slurm_script"
expect_rc 2 "slurm.sbatch (spooled) submitted from outside the repository" env -u CG_ROOT PATH="$T/bin:$PATH" \
  SLURM_JOB_ID=780 SLURM_SUBMIT_DIR="$T/elsewhere" bash "$T/spool/slurm_script" "$T/cpu.yaml"
expect_out "slurm.sbatch: error: no launch/requeue.sh in $T/elsewhere \(SLURM_SUBMIT_DIR, the folder sbatch was run in\)" \
  "the submit folder is named"
expect_out "submit from the repository root \(cd /path/to/repo && sbatch launch/slurm.sbatch .*export CG_ROOT=/path/to/repo before sbatch, or sbatch --export=ALL,CG_ROOT=/path/to/repo" \
  "what to set"
if grep -qE "command not found|No such file" "$T/out"; then bad "bash's own errors: $(cat "$T/out")"; else ok; fi
expect_rc 2 "slurm.sbatch with a CG_ROOT that is not the repository" env PATH="$T/bin:$PATH" SLURM_JOB_ID=780 \
  CG_ROOT="$T/elsewhere" bash "$T/spool/slurm_script" "$T/cpu.yaml"
expect_out "no launch/requeue.sh in $T/elsewhere \(CG_ROOT\)" "a wrong CG_ROOT is named"
expect_rc 2 "slurm.sbatch (not spooled) from another folder" sh -c 'cd "$1" && env -u CG_ROOT SLURM_JOB_ID=780 \
  bash "$2/launch/slurm.sbatch" "$3"' sh "$T/elsewhere" "$SRC" "$T/cpu.yaml"
expect_out "cd $SRC && sbatch launch/slurm.sbatch" "run in place, the hint names the script's repository"
rm -f "$T"/*.calls
expect_rc 0 "slurm.sbatch (spooled) submitted from the repository root" env -u CG_ROOT PATH="$T/bin:$PATH" \
  CG_BIN_DIR="$T/build" SLURM_JOB_ID=781 SLURM_SUBMIT_DIR="$SRC" SLURM_JOB_NUM_NODES=1 SLURM_NTASKS_PER_NODE=2 \
  CG_NVIDIA_SMI="$T/nogpu/nvidia-smi" CGTRAIN_STUB_RC=0 bash "$T/spool/slurm_script" "$T/cpu.yaml"
grep -q "cpu.yaml" "$T/cgtrain.calls" 2>/dev/null && ok || bad "spooled slurm.sbatch did not run cgtrain"

# --- slurm.sbatch: USR1 to the batch shell (#SBATCH --signal=B:USR1@N) reaches the ranks, in both launch modes ----
# Slurm signals the batch shell alone; it passes USR1 on to run.sh, which hands it to srun or mpirun, which forward
# it to their tasks. The stub srun and mpirun forward signals as the real ones do; the stub cgtrain "saves" on USR1 or
# TERM, exits 75 and records which signal it got.
grep -q '^#SBATCH --signal=B:USR1@' "$SRC/launch/slurm.sbatch" && ok || bad "slurm.sbatch does not ask for B:USR1"
mkdir -p "$T/sigbin" "$T/sigctl" "$T/sigbuild/trainer"
cat >"$T/sigbuild/trainer/cgtrain" <<STUB
#!/usr/bin/env bash
trap 'echo USR1 >>"$T/got"; echo "cgtrain stub: saved step-3 on USR1" >&2; exit 75' USR1
trap 'echo TERM >>"$T/got"; echo "cgtrain stub: saved step-3 on TERM" >&2; exit 75' TERM
for ((i = 0; i < 300; i++)); do  # written in a loop bash has parsed: see wait_for_signal in test_sweep_runner.cpp
  ((i > 0)) || echo \$\$ >>"$T/started"
  sleep 0.1
done
exit 3
STUB
# The launchers: log the call, run the task(s) in the background, pass USR1 and TERM on, exit with their status.
forward='"$@" & child=$!
trap "kill -USR1 $child" USR1
trap "kill -TERM $child" TERM
while kill -0 $child 2>/dev/null; do wait $child; done
wait $child'
{ echo '#!/usr/bin/env bash'
  echo "echo \"srun \$*\" >>\"$T/srun.calls\""
  echo 'while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done'
  echo "$forward"; } >"$T/sigbin/srun"
{ echo '#!/usr/bin/env bash'
  echo "echo \"mpirun \$*\" >>\"$T/mpirun.calls\""
  echo 'while [ $# -gt 0 ] && [ "$1" != -np ]; do shift; done; shift 2'
  echo "$forward"; } >"$T/sigbin/mpirun"
cat >"$T/sigctl/scontrol" <<STUB
#!/usr/bin/env bash
echo "\$*" >>"$T/scontrol.calls"
[ "\$1 \${2:-}" != "show hostnames" ] || echo localhost
STUB
chmod +x "$T/sigbuild/trainer/cgtrain" "$T"/sigbin/* "$T/sigctl/scontrol"
# sbatch_bg PATH_FIRST [ENV...]: slurm.sbatch as Slurm starts it, in the background (output in $T/run.out); sets pid.
sbatch_bg() {
  local path=$1
  shift
  rm -f "$T/started" "$T/got" "$T"/*.calls
  env PATH="$path:$PATH" CG_ROOT="$SRC" CG_BIN_DIR="$T/sigbuild" SLURM_JOB_ID=782 SLURM_JOB_NUM_NODES=1 \
    SLURM_JOB_NODELIST=localhost SLURM_NTASKS_PER_NODE=2 CG_NVIDIA_SMI="$T/nogpu/nvidia-smi" "$@" \
    bash "$SRC/launch/slurm.sbatch" "$T/cpu.yaml" >"$T/run.out" 2>&1 &
  pid=$!
}
# started N: wait until N ranks have started.
started() {
  local i
  for i in $(seq 150); do [ "$(cat "$T/started" 2>/dev/null | wc -l)" -ge "$1" ] && break; sleep 0.1; done
}
# usr1_sbatch STARTED PATH_FIRST [ENV...]: once STARTED ranks run, USR1 to the batch shell alone; its exit status.
usr1_sbatch() {
  local n=$1
  shift
  sbatch_bg "$@"
  started "$n"
  kill -USR1 "$pid"
  wait "$pid"
}
for mode in srun mpirun; do
  expect_rc 0 "USR1 to the batch shell, CG_LAUNCH=$mode: saved, 75, requeued" usr1_sbatch 1 "$T/sigbin:$T/sigctl" \
    CG_LAUNCH=$mode
  [ "$(cat "$T/got" 2>/dev/null)" = USR1 ] && ok ||
    bad "CG_LAUNCH=$mode: the rank got '$(cat "$T/got" 2>/dev/null)', want USR1 once; $(cat "$T/run.out")"
  grep -qx "requeue 782" "$T/scontrol.calls" 2>/dev/null && ok || bad "CG_LAUNCH=$mode: not requeued; $(cat "$T/run.out")"
  [ -f "$T/$mode.calls" ] && ok || bad "CG_LAUNCH=$mode: $mode was not the launcher; $(cat "$T/run.out")"
done
cp "$T/run.out" "$EXPECT_LOG"
expect_out "requeue: got SIGUSR1; passing it on to launch/run.sh \(pid [0-9]+\)" "the batch shell says it passed USR1 on"
expect_out "requeue: preempted \(exit 75\)" "the requeue line"
# TERM (time limit, scancel) reaches every process of the job from Slurm: the batch shell passes nothing on (a second
# signal would make cgtrain exit without saving) but waits, so the 75 of the rank's save is still requeued.
term_sbatch() {
  sbatch_bg "$T/sigbin:$T/sigctl"
  started 1
  kill -TERM "$pid"
  sleep 0.5
  kill -TERM "$(head -1 "$T/started")"  # Slurm's TERM to the rank
  wait "$pid"
}
expect_rc 0 "TERM to the whole job: the batch shell waits for the save and requeues" term_sbatch
[ "$(cat "$T/got" 2>/dev/null)" = TERM ] && ok ||
  bad "TERM to the job: the rank got '$(cat "$T/got" 2>/dev/null)', want TERM once; $(cat "$T/run.out")"
grep -qx "requeue 782" "$T/scontrol.calls" 2>/dev/null && ok || bad "TERM to the job: not requeued; $(cat "$T/run.out")"
if command -v mpirun >/dev/null 2>&1; then  # the real mpirun: USR1 to the batch shell reaches both ranks
  expect_rc 0 "USR1 to the batch shell, CG_LAUNCH=mpirun (real mpirun): requeued" usr1_sbatch 2 "$T/sigctl" \
    CG_LAUNCH=mpirun OMPI_MCA_rmaps_base_oversubscribe=1
  [ "$(sort "$T/got" 2>/dev/null | uniq -c | tr -s ' ')" = " 2 USR1" ] && ok ||
    bad "real mpirun: the ranks got '$(cat "$T/got" 2>/dev/null)', want USR1 twice; $(cat "$T/run.out")"
fi

echo "$((n - fails))/$n launch script checks passed"
[ "$fails" -eq 0 ]
