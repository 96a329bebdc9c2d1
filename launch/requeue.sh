# requeue.sh: the preemption/requeue logic of launch/slurm.sbatch (and cgsweep's sweep.sbatch), in a function so
# tests can source it. cgtrain saves a checkpoint and exits 75 (kExitPreempted) on SIGUSR1/SIGTERM; cgsweep exits 75
# after SIGUSR1 whatever stage it was in (a point stopped before or after training resumes at that stage). On 75 the
# job is put back in the queue; the next start resumes from the newest complete checkpoint (checkpoint.resume=true),
# so a run continues by itself until done. A stop signal that reaches a rank before its handlers are up (while MPI or
# libtorch loads) kills it instead: the launcher then exits with a signal's status (above 128: mpirun 138 after
# USR1), and since a signal came, that is requeued too (nothing saved is lost; the next start resumes from the
# newest complete checkpoint). Any other failure (1, 2, ...) is the run's own, signal or not, and ends the job.
#
# Signals: slurm.sbatch asks for USR1 to the batch shell alone (#SBATCH --signal=B:USR1@N), so that the warning
# arrives whichever launcher runs the ranks. A shell runs a trap only once its foreground child has ended, so the
# command runs in the background here and USR1 to this shell is passed on to it: launch/run.sh hands it to mpirun,
# which forwards SIGUSR1 to every rank, or to srun, which forwards the signals it gets to its tasks. TERM (time
# limit, scancel, preemption) reaches every process of the job from Slurm itself, so it is not passed on (a second
# signal would make cgtrain exit without saving); the shell only keeps waiting for the command, so that a 75 it
# exits with is still requeued instead of the shell dying first. A USR1 that comes from the moment this file is
# sourced until the command is ready is kept and sent once it is, or, before the command is started, keeps it from
# starting (75: requeued); launch/forward.sh says which windows lost one before.

CG_EXIT_PREEMPTED=75
cg_fwd_who=requeue
# shellcheck source=launch/forward.sh
source "$(dirname "${BASH_SOURCE[0]}")/forward.sh" || {
  echo "requeue.sh: cannot read forward.sh beside it in $(dirname "${BASH_SOURCE[0]}"); restore launch/forward.sh" >&2
  return 2
}
# From here on a USR1 is kept for the command of cg_run_with_requeue, which gets it once it is ready (a warning that
# comes while the batch script still sets up would otherwise end this shell, and the job, unrequeued).
trap 'cg_fwd USR1' USR1

# cg_run_with_requeue CMD [ARGS...]: run CMD, passing USR1 sent to this shell on to it; on exit 75 under
# Slurm, `scontrol requeue $SLURM_JOB_ID` and return 0 (the job is not marked failed); the same when CMD exited with
# a signal's status (> 128) after this shell got USR1 or TERM (a rank killed by it); otherwise return CMD's exit
# status. CG_MAX_REQUEUES
# (default 50) caps restarts.
cg_run_with_requeue() {
  local rc=0 signalled
  _cg_cmd=$1
  trap 'cg_fwd USR1; echo "requeue: got SIGUSR1; passing it on to $_cg_cmd${_cg_fwd_child:+ (pid $_cg_fwd_child)}" >&2' USR1
  # TERM is passed on only to a command that was not yet there to get Slurm's own.
  trap 'if [ -n "$_cg_fwd_ready" ]; then cg_fwd_got=TERM; else cg_fwd TERM; fi
        echo "requeue: got SIGTERM; waiting for $_cg_cmd to end (Slurm signals it too)" >&2' TERM
  if cg_fwd_start "$@"; then cg_fwd_wait || rc=$?; else rc=$?; fi
  trap - USR1 TERM
  signalled=$cg_fwd_got cg_fwd_got=""
  if [ "$rc" -gt 128 ] && [ -n "$signalled" ]; then
    # A rank that had not yet set up its handlers (MPI or libtorch still loading) dies of the signal, and the
    # launcher fails with its own status: the run was stopped, not broken, and has lost nothing saved.
    echo "requeue: $1 exited $rc after SIG$signalled reached it (a rank still starting up, before its signal" \
      "handlers, is stopped by it without saving); treating it as preempted: its newest complete checkpoint is kept" >&2
    rc=$CG_EXIT_PREEMPTED
  fi
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
  # 75 says "stopped by a signal, run me again", not what was kept: cgtrain saved a checkpoint; a cgsweep stage other
  # than training (prep, export, sample, eval) is run again on restart, cgsample going on from its journal.
  echo "requeue: preempted (exit 75): the run saved its state, or its unfinished stage is redone on restart;" \
    "requeueing job $SLURM_JOB_ID (restart $((restarts + 1)))" >&2
  if ! scontrol requeue "$SLURM_JOB_ID"; then
    echo "requeue: scontrol requeue $SLURM_JOB_ID failed; resubmit the job to resume" >&2
    return "$rc"
  fi
  return 0
}
