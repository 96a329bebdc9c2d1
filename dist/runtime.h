// MPI runtime: initialised once per process, bootstraps rank/world/local rank; a fatal error on one rank aborts all.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "dist/comm.h"

namespace cg::dist {

struct Runtime {
  int rank = 0;        // global rank
  int world = 1;       // number of processes
  int local_rank = 0;  // rank among the processes of this node (selects the GPU)
  int local_size = 1;
};

// MPI_Init_thread once (idempotent); MPI_Finalize at exit. Safe to call when not launched by mpirun (world 1).
const Runtime& init_runtime(int* argc, char*** argv);
// The runtime after init_runtime (throws if not initialised).
const Runtime& runtime();
// Collective over the ranks of this node: every rank gives an id of the GPU it chose (cuda_device_pci_bus_id; ""
// when unknown). Throws naming the ranks when two chose the same GPU, which one GPU visible per rank cannot tell
// from per-rank binding (Slurm --gpus-per-task=1) when several ranks were started on a one-GPU machine. A repeat
// call with the GPU that already passed returns at once on every rank.
void check_node_gpus_distinct(const std::string& gpu_id);
// The message for node-local ranks whose GPU ids (indexed by local rank) repeat; "" when all differ or unknown.
std::string duplicate_gpu_message(const std::vector<std::string>& ids);

// Collective over all ranks: every rank gives `text` (its resolved config, its model's config.json, ...). When a
// rank's differs from rank 0's, throws on every rank (none hangs in a later collective, none trains on its own
// settings) naming the lowest such rank and describe(rank0_text, its_text), computed there. `what` names the text.
// The error is a cg::InputError, the same words on every rank: run_main prints it once, from rank 0.
void check_same_as_rank0(const std::string& text, const std::string& what,
                         const std::function<std::string(const std::string&, const std::string&)>& describe);

// Collective over all ranks: rank 0 runs `make` and every rank returns its text; no other rank runs it (work that
// every rank would repeat, such as reading and deriving a data file). When `make` throws on rank 0, every rank
// throws an error of the same message, so none waits for a text that never comes: rank 0 its own exception, the
// others a cg::InputError, so that run_main prints it once, from rank 0, not once per rank. The other ranks wait for
// rank 0 asleep (however long `make` takes: cgexport's whole export), not polling a core.
std::string rank0_text(const std::function<std::string()>& make);

// Print `msg` on stderr with the rank (before MPI is up, the launcher's: OMPI_COMM_WORLD_RANK, PMI_RANK, PMIX_RANK,
// SLURM_PROCID, else 0), run the abort cleanup set here (if any), then MPI_Abort: every rank exits,
// none hangs. A job of one rank just exits.
[[noreturn]] void abort_all(const std::string& msg, int code = 1);

// While it lives, abort_all runs `cleanup` (once, on the aborting rank) before it ends the process: MPI_Abort and
// _Exit unwind nothing, and abort_all may be called from a watchdog thread, so a destructor alone would not run.
// For undoing what a launch made before it failed (cgtrain: a run folder it created). One at a time; exceptions
// from `cleanup` are swallowed (the abort's own message is what the user needs).
class AbortCleanup {
 public:
  explicit AbortCleanup(std::function<void()> cleanup);
  ~AbortCleanup();
  AbortCleanup(const AbortCleanup&) = delete;
  AbortCleanup& operator=(const AbortCleanup&) = delete;
};

// While it is on, a fatal error on a rank other than 0 reaches rank 0 before the job ends: that rank's abort_all
// sends its message to rank 0 and waits (up to 10 s) while rank 0, listening on a thread of its own even while its
// main thread waits in a collective, reports it, runs its AbortCleanup and ends the job. Without it, the failing
// rank's MPI_Abort kills rank 0 from outside and rank 0's cleanup never runs. Needs MPI_THREAD_MULTIPLE on every
// rank (else, and in a job of one rank, it does nothing). Constructed collectively (every rank, at the same point).
// On rank 0 it listens until stop() or destruction; on the other ranks it relays until stop(), also after the
// object is gone: an exception unwinding through it is on its way to run_main's abort_all. One at a time.
class RelayAbortsToRank0 {
 public:
  RelayAbortsToRank0();
  ~RelayAbortsToRank0();
  RelayAbortsToRank0(const RelayAbortsToRank0&) = delete;
  RelayAbortsToRank0& operator=(const RelayAbortsToRank0&) = delete;
  // From here every rank's fatal error ends the job at once (rank 0 no longer has anything to undo). Not collective.
  void stop();
  bool active() const { return active_; }

 private:
  bool active_ = false;
};

// Run `fn` and turn any escaping exception into abort_all with its message (for main()). A cg::InputError (an error in
// the command line or config, the same on every rank) is said by rank 0 alone; another rank says its own only when
// rank 0 has not ended the job within 10 s (its input differed). First it sets OMP_WAIT_POLICY=PASSIVE when unset, for
// the processes the tool starts (libgomp got it already: common/omp_env.h says why, and how to opt out).
// With a --help or -h word, `fn` runs alone: no MPI (fn must print the usage before it needs MPI).
int run_main(int argc, char** argv, int (*fn)(int, char**));

namespace detail {
// run_main's body: `parse` (when given) before MPI_Init, false once it printed --help; then `fn` under MPI.
int run_main(int argc, char** argv, const std::function<bool(int, char**)>& parse,
             const std::function<int(int, char**)>& fn);
}  // namespace detail

// The same, with the command line read by `parse` before MPI_Init, so that a wrong option fails at once, without an
// MPI start (seconds on a loaded machine; a failure on a login node whose MPI cannot start a process alone). `parse`
// throws cg::InputError for a wrong command line (said once under mpirun, as above) and returns nullopt once it has
// printed --help (the tool exits 0); `fn` then runs under MPI with what `parse` returned.
template <class T>
int run_main(int argc, char** argv, std::optional<T> (*parse)(int, char**), int (*fn)(T&)) {
  std::optional<T> parsed;
  return detail::run_main(
      argc, argv, [&](int c, char** v) { return (parsed = parse(c, v)).has_value(); },
      [&](int, char**) { return fn(*parsed); });
}

}  // namespace cg::dist
