# requeue.sh: the preemption/requeue logic of launch/slurm.sbatch, in a function so tests can source it.
# cgtrain saves a checkpoint and exits 75 (kExitPreempted) on SIGUSR1/SIGTERM; Slurm sends USR1 ahead of the time
# limit (#SBATCH --signal=USR1@N). On 75 the job is put back in the queue; the next start resumes from the newest
# complete checkpoint (checkpoint.resume=true), so a run continues by itself until done.

CG_EXIT_PREEMPTED=75

# cg_run_with_requeue CMD [ARGS...]: run CMD; on exit 75 under Slurm, `scontrol requeue $SLURM_JOB_ID` and return 0
# (the job is not marked failed); otherwise return CMD's exit status. CG_MAX_REQUEUES (default 50) caps restarts.
cg_run_with_requeue() {
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -ne "$CG_EXIT_PREEMPTED" ]; then
    return "$rc"
  fi
  if [ -z "${SLURM_JOB_ID:-}" ]; then
    echo "requeue: $1 was preempted (exit 75) outside Slurm; run the same command again to resume" >&2
    return "$rc"
  fi
  local restarts=${SLURM_RESTART_COUNT:-0} max=${CG_MAX_REQUEUES:-50}
  if [ "$restarts" -ge "$max" ]; then
    echo "requeue: job $SLURM_JOB_ID already restarted $restarts times (CG_MAX_REQUEUES=$max); not requeueing" >&2
    return "$rc"
  fi
  echo "requeue: preempted after saving (exit 75); requeueing job $SLURM_JOB_ID (restart $((restarts + 1)))" >&2
  if ! scontrol requeue "$SLURM_JOB_ID"; then
    echo "requeue: scontrol requeue $SLURM_JOB_ID failed; resubmit the job to resume" >&2
    return "$rc"
  fi
  return 0
}
