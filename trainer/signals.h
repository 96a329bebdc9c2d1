// Preemption signals: SIGTERM / SIGUSR1 ask the trainer to save a checkpoint and exit with kExitPreempted.
// The handler only sets an async-signal-safe flag; the trainer polls preempt_requested() at step boundaries and the
// ranks agree (an all-reduce of the flag, done by the trainer) so every rank saves at the same step.
// A second signal means "now": the handler calls _exit(kExitPreempted) without saving.
// Slurm: `#SBATCH --signal=USR1@120` gives the job steps' ranks 120 s to checkpoint before the kill. mpirun forwards
// SIGUSR1/SIGUSR2 to every rank; SIGTERM to mpirun terminates the job (SIGTERM to the ranks, SIGKILL shortly after,
// exit 1), so under mpirun preempt with SIGUSR1 (docs/cluster.md, section 5).
#pragma once

namespace cg {

// Exit status meaning "preempted after a clean checkpoint: requeue me" (EX_TEMPFAIL); launch scripts requeue on it.
constexpr int kExitPreempted = 75;

// Installs the SIGTERM and SIGUSR1 handlers (idempotent) and clears any earlier request.
void install_preempt_handlers();
// Restores the handlers that were in place before install_preempt_handlers().
void uninstall_preempt_handlers();
// True once a handled signal arrived. Cheap: a relaxed atomic load.
bool preempt_requested();
// The signal number that asked (0 if none), for the log line.
int preempt_signal();

}  // namespace cg
