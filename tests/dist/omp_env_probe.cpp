// Prints, per rank, OMP_WAIT_POLICY as this process's environment held it when it was executed (/proc/self/environ:
// a process that re-executed itself with the variable set would show it there), as getenv sees it in run_main, and as
// a child process gets it; and the process name (ps, pkill). Checked by check_omp_env.sh, which also reads what
// libgomp itself made of it (OMP_DISPLAY_ENV).
// `omp_env_probe blas-idle` prints instead the CPU time the process spends in the 100 ms after a 2-thread OpenBLAS
// matmul, while its main thread sleeps: OpenBLAS's idle thread spinning for its OPENBLAS_THREAD_TIMEOUT, or asleep.
#include <time.h>

#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "common/blas_threads.h"
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

double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return 1e3 * double(ts.tv_sec) + 1e-6 * double(ts.tv_nsec);
}

int blas_idle() {
  cg::set_openblas_threads(2);
  const at::Tensor a = at::rand({512, 512});
  const at::Tensor b = at::mm(a, a);  // large enough for OpenBLAS to use both threads
  const double before = cpu_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const char* timeout = std::getenv("OPENBLAS_THREAD_TIMEOUT");  // what OpenBLAS's constructor was answered
  std::printf("openblas %d threads, %lld elements, timeout %s, idle cpu %.0f ms\n", cg::openblas_threads(),
              static_cast<long long>(b.numel()), timeout ? timeout : "(unset)", cpu_ms() - before);
  return 0;
}

int probe(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "blas-idle") return blas_idle();
  const char* now = std::getenv("OMP_WAIT_POLICY");
  std::ifstream comm("/proc/self/comm");
  std::string name;
  std::getline(comm, name);
  char child[64] = "(no output)";
  if (FILE* p = ::popen("printf %s \"${OMP_WAIT_POLICY-(unset)}\"", "r")) {
    if (!std::fgets(child, sizeof(child), p)) child[0] = '\0';
    ::pclose(p);
  }
  std::printf("rank %d name %s args %d last '%s' at_exec %s getenv %s child %s\n", cg::dist::runtime().rank,
              name.c_str(), argc, argc > 1 ? argv[argc - 1] : "", at_exec("OMP_WAIT_POLICY").c_str(),
              now ? now : "(unset)", child);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return cg::dist::run_main(argc, argv, probe); }
