// cgtrain: LoRA (or full-parameter) training of LLaMA on crystal text shards, tp × dp over MPI/NCCL.
//   mpirun -np N cgtrain CONFIG.yaml [dotted.key=value ...]     train or resume run_dir
//   cgtrain --plan [--device-gb=N] CONFIG.yaml [key=value ...]   per-rank memory and per-step communication; exit
//                                                                 status 0 when it fits, 1 when it does not, 2 when
//                                                                 the config or the command line is wrong
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/input_error.h"
#include "common/omp_env.h"
#include "dist/runtime.h"
#include "trainer/config.h"
#include "trainer/signals.h"
#include "trainer/train_loop.h"
#include "trainer/train_plan.h"

namespace {

// --plan's exit status for a config or command line it cannot plan: a submit script gating on --plan tells "does not
// fit" (1) from "the config is wrong" (2).
constexpr int kPlanConfigError = 2;

struct Args {
  std::vector<char*> rest;  // argv without --plan and --device-gb, for parse_cli
  bool plan = false;
  double device_gb = 0;
};

Args parse_args_impl(int argc, char** argv) {
  Args a;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--plan") == 0) {
      a.plan = true;
    } else if (std::strncmp(argv[i], "--device-gb", 11) == 0 && (argv[i][11] == '=' || argv[i][11] == '\0')) {
      const bool separate = argv[i][11] == '\0';  // --device-gb N
      CG_CHECK(!separate || i + 1 < argc, "--device-gb needs a number: the device memory in GB, e.g. --device-gb=141 "
               "for an H200");
      const char* value = separate ? argv[++i] : argv[i] + 12;
      char* end = nullptr;
      a.device_gb = std::strtod(value, &end);
      CG_CHECK(end != value && *end == '\0' && a.device_gb > 0, "--device-gb {}: give the device memory in GB, e.g. "
               "--device-gb=141 for an H200", value);
    } else {
      a.rest.push_back(argv[i]);
    }
  }
  CG_CHECK(a.plan || a.device_gb == 0, "--device-gb only goes with --plan");
  return a;
}

// An error in the command line is every rank's: said once (cg::InputError, dist::run_main).
Args parse_args(int argc, char** argv) {
  try {
    return parse_args_impl(argc, argv);
  } catch (const cg::Error& e) {
    throw cg::InputError(e.what());
  }
}

std::optional<cg::Config> parse_config(Args& a) {
  return cg::parse_cli(int(a.rest.size()), a.rest.data(), "cgtrain",
                       "Train LoRA adapters (or a small model) on crystal text shards made by cgprep; rerun on the "
                       "same train.run_dir to resume. --plan: print per-rank memory and communication against the "
                       "GPU's memory (--device-gb=N for another device), then exit: 0 when it fits, 1 when not, 2 "
                       "when the config or the command line is wrong.");
}

// One process, no job and no MPI: an error is said plainly (not as a rank's fatal error) and exits 2.
int plan_main(int argc, char** argv) {
  try {
    Args a = parse_args(argc, argv);
    const auto cfg = parse_config(a);
    if (!cfg) return 0;
    return cg::print_train_plan(*cfg, cg::plan_device(*cfg, a.device_gb)) ? 0 : 1;
  } catch (const cg::Error& e) {
    std::fprintf(stderr, "cgtrain --plan: %s\n", cg::message_of(e).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cgtrain --plan: %s\n", e.what());
  }
  return kPlanConfigError;
}

bool is_plan(int argc, char** argv) {
  return std::any_of(argv, argv + argc, [](const char* w) { return std::strcmp(w, "--plan") == 0; });
}

// Before MPI_Init (run_main): a wrong command line or config costs no MPI start. nullopt: it printed --help.
std::optional<cg::Config> parse_cgtrain(int argc, char** argv) {
  Args a = parse_args(argc, argv);
  return parse_config(a);
}

int cgtrain_main(cg::Config& cfg) {
  const int rc = cg::train(cfg);
  // Every rank agreed to stop: exit with the preemption (or Ctrl-C) code without run_main's abort (MPI finalises at
  // exit).
  if (rc == cg::kExitPreempted || rc == cg::kExitInterrupted) std::exit(rc);
  return rc;
}

// Runs before any shared library's initialisers (.preinit_array: executables only): SIGTERM / SIGUSR1 / SIGINT wait,
// blocked, while libtorch loads, and reach the handlers main installs (common/omp_env.h).
void hold_stop_signals_at_start(int, char**, char**) { cg::hold_stop_signals(); }
__attribute__((section(".preinit_array"), used)) void (*const g_hold_at_start)(int, char**, char**) =
    hold_stop_signals_at_start;

}  // namespace

int main(int argc, char** argv) {
  // --plan starts no MPI: it plans from the config alone (its grid is parallel.tp x parallel.dp, not the launch's
  // world), so a login node whose MPI cannot start a process still plans. It has nothing to save when stopped: the
  // stop signals held since start act as they would (a Ctrl-C ends it).
  if (is_plan(argc, argv)) {
    cg::release_stop_signals();
    return plan_main(argc, argv);
  }
  // Preemption handlers before anything else: a SIGUSR1/SIGTERM while MPI, the communicators or the base weights
  // come up (minutes at 70B) is kept and answered after the first step (save, exit 75) instead of killing the rank
  // with nothing requeued.
  cg::install_preempt_handlers();
  return cg::dist::run_main(argc, argv, parse_cgtrain, cgtrain_main);
}
