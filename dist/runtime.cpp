// MPI runtime: one MPI_Init_thread per process, MPI_Finalize at exit, and abort_all so one failing rank ends the job.
#include "dist/runtime.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "common/input_error.h"
#include "common/omp_env.h"
#include "dist/check.h"
#include "dist/mpi_wait.h"

namespace cg::dist {

namespace {

Runtime g_runtime;
bool g_initialised = false;  // by init_runtime (MPI may also have been initialised by someone else)
bool g_we_own_mpi = false;   // we called MPI_Init_thread, so we call MPI_Finalize

bool mpi_live() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

void finalize_at_exit() {
  if (g_we_own_mpi && mpi_live()) MPI_Finalize();
}

}  // namespace

namespace detail {
std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return fmt::format("MPI error {}", code);
  return std::string(buf, static_cast<size_t>(len));
}

void throw_call_error(const char* file, int line, const std::string& msg) {
  const char* base = std::strrchr(file, '/');
  throw CallError(fmt::format("{}:{}: {}", base ? base + 1 : file, line, msg));
}
}  // namespace detail

namespace {
// The variables a launcher (mpirun, srun, a PMI/PMIx starter) gives each process it starts: its rank.
constexpr const char* kLauncherRankVars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"};

bool started_by_launcher() {
  for (const char* name : kLauncherRankVars)
    if (const char* v = std::getenv(name); v && *v) return true;
  return false;
}
}  // namespace

const Runtime& init_runtime(int* argc, char*** argv) {
  if (g_initialised) return g_runtime;
  int init = 0;
  CG_CHECK_MPI(MPI_Initialized(&init));
  if (!init) {
    // A tool started by hand (cgsample, cgeval, a one-rank cgtrain) is an MPI singleton, for which OpenMPI forks an
    // orted daemon, there only for MPI_Comm_spawn (never called here): ~0.2 s of CPU and a process a launch. A
    // user's own setting stays; other MPIs ignore the variable.
    if (!started_by_launcher()) setenv("OMPI_MCA_ess_singleton_isolated", "1", /*overwrite=*/0);
    // OpenMPI polls for messages without end while a rank waits in a blocking call, and yields the core only when
    // it knows the node is oversubscribed; on cores shared with other work the waiting rank then holds one that the
    // rank it waits for (or the user's other work) needs. MPI_Init reads the variable from the rank's own environment.
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", /*overwrite=*/0);
    // MULTIPLE because autograd may run a backward collective on another thread than the one that ran forward;
    // calls never overlap, so SERIALIZED is enough when that is all the library offers.
    int provided = 0;
    CG_CHECK_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
    g_we_own_mpi = true;
    std::atexit(finalize_at_exit);
    CG_CHECK(provided >= MPI_THREAD_SERIALIZED,
             "the MPI library offers thread level {} but cgtrain needs MPI_THREAD_SERIALIZED ({}); "
             "use an MPI built with thread support (OpenMPI 4 is)", provided, static_cast<int>(MPI_THREAD_SERIALIZED));
  }
  // Errors come back as codes so CG_CHECK_MPI can report them with file:line instead of MPI killing the job silently.
  CG_CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  CG_CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &g_runtime.rank));
  CG_CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &g_runtime.world));
  // Ranks that share memory are on one node; their order there picks the GPU.
  MPI_Comm node = MPI_COMM_NULL;
  CG_CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_runtime.rank, MPI_INFO_NULL, &node));
  CG_CHECK_MPI(MPI_Comm_rank(node, &g_runtime.local_rank));
  CG_CHECK_MPI(MPI_Comm_size(node, &g_runtime.local_size));
  CG_CHECK_MPI(MPI_Comm_free(&node));
  g_initialised = true;
  return g_runtime;
}

std::string duplicate_gpu_message(const std::vector<std::string>& ids) {
  for (size_t a = 0; a < ids.size(); ++a)
    for (size_t b = a + 1; b < ids.size(); ++b)
      if (!ids[a].empty() && ids[a] == ids[b])
        return fmt::format("local ranks {} and {} of this node would share GPU {}: each rank needs a GPU of its own; "
                           "launch at most as many ranks per node as it has GPUs, or bind one GPU to each rank "
                           "(Slurm --gpus-per-task=1)", a, b, ids[a]);
  return "";
}

void check_node_gpus_distinct(const std::string& gpu_id) {
  const Runtime& rt = runtime();
  // A binary checks when it picks its device and again when make_parallel_dims sets up NCCL; every rank takes the
  // same path with the same GPU, so all of them skip the second exchange together.
  static std::string checked;
  if (rt.local_size <= 1 || (!checked.empty() && checked == gpu_id)) return;
  constexpr int kLen = 64;
  char mine[kLen] = {};
  gpu_id.copy(mine, kLen - 1);
  std::vector<char> all(size_t(kLen) * size_t(rt.local_size));
  MPI_Comm node = MPI_COMM_NULL;
  CG_CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rt.rank, MPI_INFO_NULL, &node));
  const int rc = MPI_Allgather(mine, kLen, MPI_CHAR, all.data(), kLen, MPI_CHAR, node);
  MPI_Comm_free(&node);
  CG_CHECK_MPI(rc);
  std::vector<std::string> ids;
  for (int r = 0; r < rt.local_size; ++r) ids.emplace_back(all.data() + size_t(r) * kLen);
  const std::string dup = duplicate_gpu_message(ids);
  CG_CHECK(dup.empty(), "{}", dup);
  checked = gpu_id;
}

namespace {

// Rank root's string on every rank (MPI_COMM_WORLD).
std::string broadcast_string(const std::string& s, int root) {
  uint64_t n = s.size();
  CG_CHECK_MPI(MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD));
  std::string out = g_runtime.rank == root ? s : std::string(n, '\0');
  for (uint64_t off = 0; off < n;) {  // MPI counts are int
    const int chunk = int(std::min<uint64_t>(n - off, uint64_t(1) << 30));
    CG_CHECK_MPI(MPI_Bcast(out.data() + off, chunk, MPI_CHAR, root, MPI_COMM_WORLD));
    off += uint64_t(chunk);
  }
  return out;
}

}  // namespace

void check_same_as_rank0(const std::string& text, const std::string& what,
                         const std::function<std::string(const std::string&, const std::string&)>& describe) {
  if (!g_initialised || g_runtime.world == 1) return;  // one process (tools' tests build models without MPI)
  const Runtime& rt = g_runtime;
  const std::string first = broadcast_string(text, 0);
  int differs = text != first ? rt.rank : rt.world;
  CG_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &differs, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (differs == rt.world) return;
  std::string why;
  if (rt.rank == differs) {
    try {
      why = describe(first, text);
    } catch (const std::exception& e) {
      why = e.what();
    }
  }
  why = broadcast_string(why, differs);
  // The same words on every rank, which all throw here: an InputError, said once, by rank 0 (run_main).
  throw InputError(fmt::format("rank {} was given another {} than rank 0{}{}: every rank of a job must run the same "
                               "tool with the same config file and overrides, and read the same model.hf_dir (its "
                               "config.json and weights): a node with its own copy of a file that differs, or "
                               "mpirun's MPMD ':' with other arguments, does not", differs, what,
                               why.empty() ? "" : ": ", why));
}

std::string rank0_text(const std::function<std::string()>& make) {
  if (!g_initialised || g_runtime.world == 1) return make();
  // One broadcast: a byte saying which ('t' text, 'e' error message), then it.
  std::string sent;
  std::exception_ptr failed;
  if (g_runtime.rank == 0) {
    try {
      sent = "t" + make();
    } catch (const std::exception& e) {
      failed = std::current_exception();
      sent = std::string("e") + e.what();
    } catch (...) {
      failed = std::current_exception();
      sent = "eunknown exception";
    }
  }
  // Rank 0's work may take minutes (cgexport's whole export, reading a data file): the others wait for it asleep
  // here, not in the broadcast, whose OpenMPI call would poll a core each for all that time.
  wait_asleep_for_all(MPI_COMM_WORLD);
  std::string got = broadcast_string(sent, 0);
  if (got.empty() || got[0] != 't') {
    if (failed) std::rethrow_exception(failed);
    // Rank 0 says its own as it ends the job: here the same words are an InputError, said by rank 0 alone (run_main).
    throw InputError(got.empty() ? std::string("rank 0 sent nothing") : got.substr(1));
  }
  return got.substr(1);
}

const Runtime& runtime() {
  CG_CHECK(g_initialised, "the MPI runtime is not up: call cg::dist::init_runtime(&argc, &argv) (or run_main) in main()");
  return g_runtime;
}

namespace {

std::mutex g_cleanup_mutex;
std::function<void()> g_abort_cleanup;

// Takes the cleanup out under the lock, so that two threads aborting at once run it once.
void run_abort_cleanup() {
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lock(g_cleanup_mutex);
    std::swap(fn, g_abort_cleanup);
  }
  if (!fn) return;
  try {
    fn();
  } catch (...) {
  }
}

}  // namespace

AbortCleanup::AbortCleanup(std::function<void()> cleanup) {
  std::lock_guard<std::mutex> lock(g_cleanup_mutex);
  g_abort_cleanup = std::move(cleanup);
}

AbortCleanup::~AbortCleanup() {
  std::lock_guard<std::mutex> lock(g_cleanup_mutex);
  g_abort_cleanup = nullptr;
}

namespace {

// The relay (RelayAbortsToRank0): its own communicator, so no message of it meets a collective's.
MPI_Comm g_relay_comm = MPI_COMM_NULL;
std::atomic<bool> g_relaying{false};     // ranks other than 0: abort_all sends its message to rank 0
std::atomic<bool> g_stop_listen{false};  // rank 0: the listener ends
std::thread g_listener;
constexpr int kRelayTag = 7301;
constexpr int kRelayMaxChars = 4096;
constexpr double kRelayWaitS = 10;  // for rank 0 to end the job; then the rank ends it itself

// Rank 0's listener: the first message that comes ends the job through abort_all, which runs rank 0's cleanup.
void listen_for_failures() {
  std::vector<char> buf(kRelayMaxChars);
  MPI_Request req = MPI_REQUEST_NULL;
  if (MPI_Irecv(buf.data(), kRelayMaxChars, MPI_CHAR, MPI_ANY_SOURCE, kRelayTag, g_relay_comm, &req) != MPI_SUCCESS)
    return;
  while (!g_stop_listen) {
    int got = 0;
    MPI_Status st;
    if (MPI_Test(&req, &got, &st) != MPI_SUCCESS) return;
    if (got) {
      int n = 0;
      MPI_Get_count(&st, MPI_CHAR, &n);
      abort_all(fmt::format("rank {} failed, ending the job: {}", st.MPI_SOURCE,
                            std::string(buf.data(), size_t(std::max(0, n)))));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  MPI_Cancel(&req);
  MPI_Wait(&req, MPI_STATUS_IGNORE);
}

// A rank other than 0: hand `msg` to rank 0 and give it the time to clean up and end the job (which kills this
// process). When that time runs out (rank 0 no longer listens, or is stuck itself), the caller ends the job.
void relay_to_rank0(const std::string& msg) {
  static std::string sent;  // outlives the send, which may still be pending when the job ends
  sent = msg.substr(0, kRelayMaxChars);
  MPI_Request req = MPI_REQUEST_NULL;
  if (MPI_Isend(sent.data(), int(sent.size()), MPI_CHAR, 0, kRelayTag, g_relay_comm, &req) != MPI_SUCCESS) return;
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(kRelayWaitS);
  while (std::chrono::steady_clock::now() < until) {
    int done = 0;
    if (req != MPI_REQUEST_NULL && MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

RelayAbortsToRank0::RelayAbortsToRank0() {
  if (!g_initialised || g_runtime.world == 1 || !mpi_live()) return;
  int level = 0;
  CG_CHECK_MPI(MPI_Query_thread(&level));
  int all_multiple = level >= MPI_THREAD_MULTIPLE ? 1 : 0;
  CG_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &all_multiple, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (!all_multiple) return;  // rank 0 could not listen while its main thread is in MPI
  if (g_relay_comm == MPI_COMM_NULL) CG_CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &g_relay_comm));
  active_ = true;
  if (g_runtime.rank == 0) {
    g_stop_listen = false;
    g_listener = std::thread(listen_for_failures);
  } else {
    g_relaying = true;
  }
}

void RelayAbortsToRank0::stop() {
  if (!active_) return;
  active_ = false;
  g_relaying = false;
  g_stop_listen = true;
  if (g_listener.joinable()) g_listener.join();
}

RelayAbortsToRank0::~RelayAbortsToRank0() {
  if (!active_) return;
  g_stop_listen = true;  // rank 0; the other ranks keep relaying (see the header)
  if (g_listener.joinable()) g_listener.join();
}

namespace {

// The rank before MPI is up (a failure before or in init_runtime): the launcher's environment says it, so each
// process of `mpirun -np 2` names itself instead of all claiming rank 0. 0 when no launcher started this process.
int launcher_rank() {
  for (const char* name : kLauncherRankVars) {
    const char* v = std::getenv(name);
    if (!v || !*v) continue;
    char* end = nullptr;
    const long r = std::strtol(v, &end, 10);
    if (*end == '\0' && r >= 0 && r <= 1 << 30) return int(r);
  }
  return 0;
}

}  // namespace

void abort_all(const std::string& msg, int code) {
  const int rank = g_initialised ? g_runtime.rank : launcher_rank();
  // stderr directly (not only spdlog): the logger may not be set up yet, and this must reach the user.
  std::fprintf(stderr, "[rank %d] fatal: %s\n", rank, msg.c_str());
  std::fflush(stderr);
  if (auto logger = spdlog::default_logger()) logger->flush();
  run_abort_cleanup();
  // Rank 0 cleans up and ends the job (it may be waiting in a collective this rank will never join).
  if (g_relaying.exchange(false) && g_initialised && g_runtime.rank != 0 && mpi_live()) relay_to_rank0(msg);
  if (code == 0) code = 1;
  // MPI_Abort kills every rank of the job, including those blocked in a collective. A lone rank has no peer to stop:
  // it exits plainly, without MPI_Abort's banner about killing the job (and without MPI_Finalize, as this may run on
  // a watchdog thread).
  if (mpi_live() && !(g_initialised && g_runtime.world == 1)) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

namespace {

constexpr double kInputErrorWaitS = 10;  // for rank 0 to say the same error and end the job

// An InputError (the command line or the config every rank was given): rank 0 says it and ends the job while the other
// ranks wait quietly, so that `mpirun -np 4` prints it once, not four times. No rank asks the others: one whose rank 0
// did not fail (a config file that differs, or is missing, on its node) says its own error once the wait is over, late
// but not lost. Should rank 0 fail with another error, that one is said and this rank's is not. Before MPI_Init (a
// tool's options, read first) the launcher's rank says which rank this is, and the launcher ends the job when rank 0
// exits with the error (mpirun does; srun with --kill-on-bad-exit).
[[noreturn]] void abort_on_input_error(const std::string& msg) {
  const bool other_rank =
      g_initialised ? g_runtime.world > 1 && g_runtime.rank != 0 && mpi_live() : launcher_rank() != 0;
  if (other_rank) std::this_thread::sleep_for(std::chrono::duration<double>(kInputErrorWaitS));
  abort_all(msg);
}

}  // namespace

int run_main(int argc, char** argv, int (*fn)(int, char**)) { return detail::run_main(argc, argv, nullptr, fn); }

int detail::run_main(int argc, char** argv, const std::function<bool(int, char**)>& parse,
                     const std::function<int(int, char**)>& fn) {
  // --help is answered without MPI: a login node whose MPI cannot start a process alone (or takes half a minute to
  // start its singleton daemon under load) still prints the usage, at once.
  const auto is_help = [](const char* w) { return std::strcmp(w, "--help") == 0 || std::strcmp(w, "-h") == 0; };
  if (std::any_of(argv + 1, argv + argc, is_help)) {
    try {
      if (parse && !parse(argc, argv)) return 0;
      return fn(argc, argv);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 2;
    }
  }
  keep_passive_omp_for_children();  // libgomp got it already (common/omp_env.h); the processes it starts get it too
  release_stop_signals();            // main installed its handlers: a signal held while libtorch loaded gets in
  int rc = 0;
  try {
    if (parse && !parse(argc, argv)) return 0;  // --help printed; no MPI
    const Runtime& rt = init_runtime(&argc, &argv);
    rc = fn(argc, argv);
    // A rank that gives up with an exit code would leave its peers waiting in their next collective.
    if (rc != 0 && rt.world > 1) abort_all(fmt::format("exited with code {}", rc), rc);
  } catch (const InputError& e) {
    abort_on_input_error(e.what());
  } catch (const std::exception& e) {
    abort_all(e.what());
  } catch (...) {
    abort_all("unknown exception");
  }
  return rc;
}

}  // namespace cg::dist
