// Stop signals: SIGTERM / SIGUSR1 (preemption) and SIGINT (Ctrl-C) ask the trainer to save a checkpoint at the next
// step boundary and exit: kExitPreempted (75, "requeue me") after SIGTERM/SIGUSR1, kExitInterrupted (130, the shell's
// code for Ctrl-C, not requeued) after SIGINT.
// The handler only sets an async-signal-safe flag; the trainer polls stop_requested() at step boundaries and the
// ranks agree (an all-reduce, done by the trainer) so every rank saves at the same step.
// A second signal means "now": the handler calls _exit with that signal's code without saving (checkpoints are
// written to a staging folder and renamed, so the last complete one survives). SIGINT before the training loop
// (arm_interrupt_save) also exits at once, saying so on stderr: nothing has been trained that a save would keep.
// SIGTERM/SIGUSR1 before the loop are kept: the trainer saves after the first step and exits 75.
// Slurm: `#SBATCH --signal=USR1@120` gives the job steps' ranks 120 s to checkpoint before the kill
// (launch/slurm.sbatch asks for B:USR1 instead and passes it on to the launcher, which works for srun and mpirun
// alike). mpirun forwards
// SIGUSR1/SIGUSR2 to every rank; SIGTERM or Ctrl-C to mpirun terminates the job (SIGTERM to the ranks, SIGKILL
// shortly after, exit 1), so under mpirun stop with SIGUSR1 (docs/cluster.md, section 5).
#pragma once

namespace cg {

// Exit status meaning "preempted after a clean checkpoint: requeue me" (EX_TEMPFAIL); launch scripts requeue on it.
constexpr int kExitPreempted = 75;
// Exit status after Ctrl-C (128 + SIGINT): saved when it came during training, and not to be requeued.
constexpr int kExitInterrupted = 130;

// Installs the SIGTERM, SIGUSR1 and SIGINT handlers (idempotent) and clears any earlier request; SIGINT exits at once
// until arm_interrupt_save().
void install_preempt_handlers();
// From here on SIGINT, like SIGTERM, asks for a save at the next step boundary (the training loop calls it).
void arm_interrupt_save();
// The run has ended and saved: from here stop signals are caught and dropped, so the process leaves with its own
// status (0 when complete, 75 / 130 after a stop) instead of being killed by a late signal (143 / 138).
void ignore_stop_signals();
// Restores the handlers that were in place before install_preempt_handlers().
void uninstall_preempt_handlers();
// True once a handled signal arrived. Cheap: a relaxed atomic load.
bool preempt_requested();
// The signal number that asked (0 if none), for the log line.
int preempt_signal();
// The exit status the first signal asks for: kExitInterrupted for SIGINT, else kExitPreempted; 0 if none arrived.
int stop_exit_code();

}  // namespace cg
