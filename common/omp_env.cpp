#include "common/omp_env.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace {

// What the tool's libraries read for these variables when the environment has none (why: omp_env.h).
struct Default {
  const char* name;
  const char* value;
};
constexpr Default kDefaults[] = {{"OMP_WAIT_POLICY", "PASSIVE"}, {"OPENBLAS_THREAD_TIMEOUT", "4"}};

}  // namespace

// libgomp's getenv("OMP_WAIT_POLICY") and OpenBLAS's getenv("OPENBLAS_THREAD_TIMEOUT") in their constructors, before
// main (why: omp_env.h). Exported from each tool's executable (cg_common's link option
// --export-dynamic-symbol=getenv), so the dynamic linker binds every shared library's getenv to this one; libc's own
// calls stay on libc's. It runs before libc is initialised too (environ is still null then), so it only reads.
extern "C" char* getenv(const char* name) noexcept {
  const size_t n = std::strlen(name);
  if (environ != nullptr)
    for (char** e = environ; *e != nullptr; ++e)
      if (std::strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  for (const Default& d : kDefaults)
    if (std::strcmp(name, d.name) == 0) return const_cast<char*>(d.value);
  return nullptr;
}

namespace cg {

namespace {

void set_stop_signals(int how) {
  sigset_t stop;
  sigemptyset(&stop);
  for (int sig : {SIGTERM, SIGUSR1, SIGINT}) sigaddset(&stop, sig);
  sigprocmask(how, &stop, nullptr);
}

}  // namespace

void keep_passive_omp_for_children() {
  for (const Default& d : kDefaults) ::setenv(d.name, d.value, /*overwrite=*/0);
}

void hold_stop_signals() { set_stop_signals(SIG_BLOCK); }

void release_stop_signals() { set_stop_signals(SIG_UNBLOCK); }

}  // namespace cg
