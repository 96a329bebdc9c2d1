// Prints, per rank, OMP_WAIT_POLICY as this process's environment held it when it was executed (/proc/self/environ,
// i.e. what libgomp saw when it loaded) and as getenv sees it now, and the process name (ps, pkill). Checked by check_omp_env.sh.
// With --usr1-in-reexec the re-executed image raises SIGUSR1 before it installs its handler (a signal that arrives
// while the new image loads): the re-exec holds it, and the handler installed afterwards must get it.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "dist/runtime.h"

namespace {

std::string at_exec(const std::string& name) {
  std::ifstream f("/proc/self/environ", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  for (size_t i = 0; i < all.size();) {
    const size_t end = all.find('\0', i);
    const std::string kv = all.substr(i, end - i);
    if (kv.rfind(name + "=", 0) == 0) return kv.substr(name.size() + 1);
    if (end == std::string::npos) break;
    i = end + 1;
  }
  return "(unset)";
}

int probe(int argc, char** argv) {
  const char* now = std::getenv("OMP_WAIT_POLICY");
  std::ifstream comm("/proc/self/comm");
  std::string name;
  std::getline(comm, name);
  std::printf("rank %d name %s args %d last '%s' at_exec %s getenv %s\n", cg::dist::runtime().rank, name.c_str(),
              argc, argc > 1 ? argv[argc - 1] : "", at_exec("OMP_WAIT_POLICY").c_str(), now ? now : "(unset)");
  return 0;
}

volatile std::sig_atomic_t g_caught = 0;
extern "C" void on_signal(int sig) { g_caught = sig; }

}  // namespace

int main(int argc, char** argv) {
  const bool usr1 = argc > 1 && std::strcmp(argv[argc - 1], "--usr1-in-reexec") == 0;
  if (usr1 && at_exec("OMP_WAIT_POLICY") == "PASSIVE") {
    std::raise(SIGUSR1);  // held across the re-exec (or, without that, the default action ends the process: 138)
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, nullptr);
  }
  const int rc = cg::dist::run_main(argc, argv, probe);
  if (usr1) std::printf("caught signal %d\n", int(g_caught));
  return rc;
}
