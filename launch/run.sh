#!/usr/bin/env bash
# run.sh: launch a cgtrain tool on one node or many. Reads the few config keys it needs (model.device,
# model.hf_dir, parallel.tp, parallel.dp, parallel.backend) from CONFIG.yaml + dotted overrides (see config_get.sh
# for the subset of YAML understood), checks the setup early with messages that say what to change, sets the
# environment each rank needs, then runs mpirun (or execs srun inside a Slurm allocation). The exit status is the
# tool's (75: preempted), and 75 too when a stop signal came before the tool started (it is then not started) or
# ended mpirun before its handlers were up.
# SIGTERM or SIGUSR1 sent to run.sh under mpirun reach the ranks as SIGUSR1 (mpirun would answer SIGTERM by killing
# them): cgtrain saves a checkpoint and exits 75.
#
#   launch/run.sh [options] [TOOL] CONFIG.yaml [section.key=value ...]
#
#   CONFIG.yaml       the first argument ending in .yaml or .yml that names an existing file (a folder or file name
#                     may hold '=' or start with '-'); section.key=value and --section.key=value are overrides, as
#                     the tools take them
#   TOOL              cgtrain (default), cgsample, cgeval, ... found in BIN_DIR/{trainer,sampler,data}/;
#                     cgprep is not an MPI program: it runs once, here, without mpirun/srun or checks
#                     (cgtok takes no config: run it directly)
#   --np N            single node: number of ranks (default: GPUs on the node for cuda, else tp x max(dp,1))
#   --hostfile FILE   many nodes: one line per node ("node01 slots=8"; # comments allowed)
#   --ppn N           ranks per node with --hostfile (default: GPUs per node for cuda, else the lines' slots=, which
#                     must be the same on every line, else 1); every node runs the same number of ranks
#   --srun            inside sbatch/salloc: launch with srun over the allocation (nodes x SLURM_NTASKS_PER_NODE)
#   --bin-dir DIR     build folder (default: $CG_BIN_DIR, else the build/ beside launch/: <repo>/build)
#   --dry-run         print the checks, environment and launch line; run nothing
#
# Each rank gets OMP_NUM_THREADS = cores / ranks-per-node (unless already set). GPU runs also get NCCL_DEBUG=WARN,
# CUDA_DEVICE_MAX_CONNECTIONS=1 and InfiniBand defaults (NCCL_IB_TIMEOUT, NCCL_IB_RETRY_CNT); any NCCL_*, UCX_*,
# CG_* variables set by the caller are forwarded to every rank. cgtrain picks its GPU from its local rank.
# Tests: CG_NVIDIA_SMI (default nvidia-smi) and CG_CORES (default nproc) can be pointed elsewhere.
set -euo pipefail
# A stop signal from now on is kept (launch/forward.sh): one that comes before mpirun starts means it is not started.
trap '_cg_fwd_pending=USR1 cg_fwd_got=TERM' TERM
trap '_cg_fwd_pending=USR1 cg_fwd_got=USR1' USR1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=launch/config_get.sh
source "$HERE/config_get.sh"
cg_fwd_who=run.sh
# shellcheck source=launch/forward.sh
source "$HERE/forward.sh"
trap 'cg_fwd USR1 TERM' TERM
trap 'cg_fwd USR1' USR1

die() { echo "run.sh: error: $*" >&2; exit 2; }
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; }  # the header

# The build folder of this checkout, wherever run.sh is started from.
# is_override WORD: section.key=value or --section.key=value (dotted names of [A-Za-z0-9_]), as the tools read them.
is_override() {
  local w=${1#--}
  [[ "${w%%=*}" =~ ^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$ ]]
}

np="" hostfile="" ppn="" use_srun=0 dry=0 bin_dir=${CG_BIN_DIR:-$HERE/../build} tool="" config=""
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --np) np=${2:?--np needs a number}; shift 2 ;;
    --hostfile) hostfile=${2:?--hostfile needs a file}; shift 2 ;;
    --ppn) ppn=${2:?--ppn needs a number}; shift 2 ;;
    --srun) use_srun=1; shift ;;
    --bin-dir) bin_dir=${2:?--bin-dir needs a folder}; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift ;;
    *)
      # The config as the tools find it: the first .yaml/.yml argument naming an existing file, whatever else its
      # path holds ('=', a leading '-'); then section.key=value and --section.key=value overrides, then the tool.
      if is_override "$1" && { [ -n "$config" ] || [ ! -f "$1" ]; }; then
        overrides+=("$1")
      else
        case "$1" in
          *.yaml|*.yml)
            [ -z "$config" ] || die "two config files ($config, $1); pass one and use key=value overrides"
            [ -f "$1" ] || die "config file '$1' not found"
            config=$1 ;;
          -*) die "unknown option '$1' (see --help)" ;;
          *=*) die "'$1' is neither a section.key=value override nor an existing CONFIG.yaml" ;;
          *) [ -z "$tool" ] || die "unexpected argument '$1' (tool is already $tool)"; tool=$1
             [ "$tool" != cgtok ] || die "cgtok takes no config and is no MPI program: run it directly" \
               "(build/data/cgtok --help)" ;;
        esac
      fi
      shift ;;
  esac
done
tool=${tool:-cgtrain}
[ -n "$config" ] || die "no CONFIG.yaml given (usage: launch/run.sh [options] [TOOL] CONFIG.yaml [key=value ...])"
[ -f "$config" ] || die "config file '$config' not found"
# As the tool would refuse it, before any sizing reads one of the two values.
twice=$(cg_repeated_override ${overrides[@]+"${overrides[@]}"})
[ -z "$twice" ] || die "$twice"
for v in "$np" "$ppn"; do
  [ -z "$v" ] || [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "'$v' is not a positive rank count"
done

# find_binary: the tool under BIN_DIR (a dry run tolerates its absence: prints the bare name).
find_binary() {
  local d
  for d in "$bin_dir/trainer" "$bin_dir/sampler" "$bin_dir/data" "$bin_dir/launch" "$bin_dir"; do
    if [ -x "$d/$tool" ]; then echo "$(cd "$d" && pwd)/$tool"; return; fi
  done
  [ "$dry" = 1 ] || die "cannot find $tool under $bin_dir/{trainer,sampler,data}; build first (./scripts/build.sh) or pass --bin-dir"
  echo "$tool"
}

# One-process tools: N copies under mpirun would each write the same output.
case "$tool" in
  cgprep)
    binary=$(find_binary) || exit $?
    echo "run.sh: $tool is not an MPI program: one process, no launcher" >&2
    echo "run.sh: $binary $config ${overrides[*]+${overrides[*]}}" >&2
    [ "$dry" = 1 ] && exit 0
    cg_fwd_exec "$binary" "$config" ${overrides[@]+"${overrides[@]}"} || exit $?
    ;;
esac

get() { cg_config_get "$config" "$1" "$2" ${overrides[@]+"${overrides[@]}"}; }
device=$(get model.device auto)
hf_dir=$(get model.hf_dir "")
tp=$(get parallel.tp 1)
dp=$(get parallel.dp 0)
# run.sh sizes the job from these, so it takes plain digits only (cgtrain also reads 2.0 or 1e0 as an integer, and
# refuses 02; bash's arithmetic would read 010 as octal 8).
[[ "$tp" =~ ^[1-9][0-9]*$ ]] || die "parallel.tp must be a positive integer in plain digits (e.g. 2), got '$tp'"
[[ "$dp" =~ ^(0|[1-9][0-9]*)$ ]] ||
  die "parallel.dp must be a non-negative integer in plain digits (e.g. 2; 0: world size / tp), got '$dp'"

# GPUs on this node (0 when nvidia-smi is missing or sees none).
smi=${CG_NVIDIA_SMI:-nvidia-smi}
gpus=0
if command -v "$smi" >/dev/null 2>&1; then
  gpus=$("$smi" -L 2>/dev/null | grep -c '^GPU' || true)
fi
if [ "$device" = auto ]; then
  if [ "$gpus" -gt 0 ]; then device=cuda; else device=cpu; fi
fi
if [ "$device" = cuda ] && [ "$gpus" -eq 0 ]; then
  die "model.device=cuda but no GPU is visible ('$smi -L' lists none or is not installed); run on a GPU node or set model.device=cpu"
fi
backend=$(get parallel.backend auto)
if [ "$backend" = nccl ] && [ "$device" = cpu ]; then
  die "parallel.backend=nccl needs a GPU per rank but the ranks run on the CPU (model.device=cpu, or auto with no GPU" \
    "visible); set parallel.backend=mpi (or auto: nccl on cuda, mpi on cpu)"
fi

# The grid: nodes x ranks per node. ppn_from says where the ranks per node came from, count_hint how to give another
# count: for the messages below.
nodes=1
ppn_from="--ppn" count_hint="--ppn N"
if [ "$use_srun" = 1 ]; then
  [ -n "${SLURM_JOB_ID:-}" ] || die "--srun needs a Slurm allocation (run inside sbatch or salloc)"
  nodes=${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-1}}
  tpn=${SLURM_NTASKS_PER_NODE:-}
  [ -n "$ppn" ] || ppn_from="SLURM_NTASKS_PER_NODE" count_hint="#SBATCH --ntasks-per-node or --nodes"
  ppn=${ppn:-${tpn%%(*}}
  [ -n "$ppn" ] || die "set #SBATCH --ntasks-per-node (ranks per node) or pass --ppn"
elif [ -n "$hostfile" ]; then
  [ -f "$hostfile" ] || die "hostfile '$hostfile' not found"
  hosts=$(grep -vE '^[[:space:]]*(#|$)' "$hostfile" || true)
  nodes=$(printf '%s\n' "$hosts" | grep -c . || true)
  [ "$nodes" -gt 0 ] || die "hostfile '$hostfile' lists no hosts"
  # mpirun merges the lines of one host into one node (their slots added): counted here as nodes, the grid would not be
  # the one mpirun lays out.
  dup=$(printf '%s\n' "$hosts" | awk '{print $1}' | sort | uniq -d | paste -sd, - | sed 's/,/, /g')
  [ -z "$dup" ] || die "hostfile '$hostfile' lists $dup on more than one line; mpirun takes such lines as one node" \
    "(their slots added): list each node once, with slots=N for its ranks"
  # slots= of each line ("" without one): every node runs the same number of ranks (ppr:N:node), so a count that
  # differs between lines cannot be followed.
  slots=$(printf '%s\n' "$hosts" | sed 's/[[:space:]]*#.*//' |
    sed -n 's/.*[[:space:]]slots=\([0-9]*\).*/\1/p;t;s/.*//p' | sort -u)  # slots=, not max_slots=
  if [ -z "$ppn" ]; then
    count_hint="slots=N in the hostfile or --ppn N"
    if [ "$device" = cuda ]; then ppn=$gpus ppn_from="the GPUs per node" count_hint="--ppn N"
    elif [ "$(printf '%s\n' "$slots" | grep -c '')" -gt 1 ]; then
      listing=$(printf '%s\n' "$hosts" | sed 's/[[:space:]]*#.*//' | paste -sd, - | sed 's/,/, /g')
      die "hostfile '$hostfile' gives its nodes different slot counts ($listing); run.sh starts the same number of" \
        "ranks on every node (a tp group stays inside a node): give every line the same slots=N, or pass --ppn N" \
        "(at most the smallest)"
    elif [ -z "$slots" ]; then ppn=1 ppn_from="a hostfile without slots= (1 per node)"
    else ppn=$slots ppn_from="slots=$slots in the hostfile"
    fi
  fi
else
  ppn_from="--np" count_hint="--np N"
  if [ -z "$np" ]; then
    if [ "$device" = cuda ]; then np=$gpus ppn_from="the GPUs on the node"
    else np=$((tp * (dp > 0 ? dp : 1))) ppn_from="parallel.tp x parallel.dp"
    fi
  fi
  ppn=$np
fi
world=$((nodes * ppn))
grid="$nodes node(s) x $ppn ranks; ranks per node from $ppn_from"

# Checks that would otherwise fail minutes later inside the job.
if [ "$device" = cuda ]; then
  [ "$tp" -le "$gpus" ] || die "parallel.tp $tp is larger than the $gpus GPUs per node; tensor parallelism stays inside a node: use parallel.tp <= $gpus"
  [ "$ppn" -le "$gpus" ] || die "$ppn ranks per node but only $gpus GPUs; use at most one rank per GPU (--np/--ppn <= $gpus)"
fi
if [ $((world % tp)) -ne 0 ]; then
  die "parallel.tp $tp does not divide world $world ($grid); change parallel.tp or the rank count ($count_hint)"
fi
if [ "$dp" -gt 0 ] && [ $((tp * dp)) -ne "$world" ]; then
  die "parallel.tp $tp x parallel.dp $dp = $((tp * dp)) but world is $world ($grid); set parallel.dp=0" \
    "(world / tp) or $((world / tp)), or change the rank count ($count_hint)"
fi
[ $((ppn % tp)) -eq 0 ] || die "parallel.tp $tp does not divide the $ppn ranks per node ($grid); a tp group must" \
  "not span nodes: change parallel.tp or the ranks per node ($count_hint)"
if [ -n "$hf_dir" ]; then
  [ -d "$hf_dir" ] || die "model.hf_dir '$hf_dir' is not a folder; download the Hugging Face checkpoint there (config.json + *.safetensors) or set model.hf_dir= for a random init"
  if ! [ -f "$hf_dir/config.json" ]; then
    if [ -e "$hf_dir/adapter_config.json" ]; then
      die "model.hf_dir '$hf_dir' has no config.json: it is a PEFT adapter folder (adapter_config.json), not a base" \
        "model: give it as sample.adapter (or lora.init_adapter) and its base model's folder as model.hf_dir"
    elif [ -e "$hf_dir/manifest.json" ] || [ -d "$hf_dir/checkpoints" ]; then
      die "model.hf_dir '$hf_dir' has no config.json: it is a cgtrain run or checkpoint folder, not a base model:" \
        "give it as sample.adapter (cgsample), or export it (cgexport RUN_DIR --out DIR, --merge for a whole model)" \
        "and keep model.hf_dir its base model"
    fi
    die "model.hf_dir '$hf_dir' has no config.json; point it at the Hugging Face checkpoint folder"
  fi
  compgen -G "$hf_dir/*.safetensors" >/dev/null || echo "run.sh: warning: no *.safetensors in $hf_dir" >&2
fi

binary=$(find_binary) || exit $?

# Environment of every rank.
cores=${CG_CORES:-$(nproc)}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( cores / ppn > 0 ? cores / ppn : 1 ))}
if [ "$device" = cuda ]; then
  export NCCL_DEBUG=${NCCL_DEBUG:-WARN}
  export CUDA_DEVICE_MAX_CONNECTIONS=${CUDA_DEVICE_MAX_CONNECTIONS:-1}  # keeps TP collectives ordered with compute
  export NCCL_IB_TIMEOUT=${NCCL_IB_TIMEOUT:-22}
  export NCCL_IB_RETRY_CNT=${NCCL_IB_RETRY_CNT:-7}
fi
fwd=(OMP_NUM_THREADS)
while IFS= read -r v; do fwd+=("$v"); done < <(compgen -e | grep -E '^(NCCL_|UCX_|CG_|CUDA_DEVICE_MAX_CONNECTIONS$)' || true)

if [ "$use_srun" = 1 ]; then
  # srun exports the whole environment by default.
  cmd=(srun --kill-on-bad-exit=1 --cpu-bind=none --nodes="$nodes" --ntasks-per-node="$ppn" --ntasks="$world")
else
  cmd=(mpirun --bind-to none)
  [ "$(id -u)" != 0 ] || cmd+=(--allow-run-as-root)
  for v in "${fwd[@]}"; do cmd+=(-x "$v"); done
  if [ -n "$hostfile" ]; then
    cmd+=(--hostfile "$hostfile" --map-by "ppr:$ppn:node" -np "$world")
  else
    [ "$device" = cuda ] || cmd+=(--oversubscribe)
    cmd+=(-np "$world")
  fi
fi
cmd+=("$binary" "$config" ${overrides[@]+"${overrides[@]}"})

echo "run.sh: $tool on $nodes node(s) x $ppn ranks = world $world (tp $tp, dp $((world / tp))), device $device, OMP_NUM_THREADS=$OMP_NUM_THREADS" >&2
echo "run.sh: ${cmd[*]}" >&2
[ "$dry" = 1 ] && exit 0
# srun passes the signals it gets on to its tasks.
if [ "$use_srun" = 1 ]; then cg_fwd_exec "${cmd[@]}" || exit $?; fi

# mpirun answers SIGTERM by killing the ranks (SIGKILL shortly after) and exits 1, so a save may not finish; it
# forwards SIGUSR1 to every rank. So mpirun runs in the background and SIGTERM / SIGUSR1 to run.sh become SIGUSR1
# to mpirun; SIGINT is passed on as it is.
trap 'cg_fwd INT' INT
rc=0
if cg_fwd_start "${cmd[@]}"; then cg_fwd_wait || rc=$?; else rc=$?; fi
if [ "$rc" -gt 128 ] && [ -n "$cg_fwd_got" ] && [ "$cg_fwd_got" != INT ]; then
  # mpirun (or a rank) still starting up, before its signal handlers, is ended by the signal: nothing ran that a
  # save would keep, and the run was stopped, not broken.
  echo "run.sh: mpirun exited $rc after SIG$cg_fwd_got reached it or a $tool rank while starting up (before its signal" \
    "handlers);" \
    "exiting 75 (preempted): run the same command again (cgtrain resumes from its newest complete checkpoint)" >&2
  rc=75
fi
exit "$rc"
