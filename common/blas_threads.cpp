#include "common/blas_threads.h"

#include <dlfcn.h>

namespace cg {

int openblas_threads() {
  using GetFn = int (*)();
  static const auto get = reinterpret_cast<GetFn>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return get ? get() : -1;
}

void set_openblas_threads(int n) {
  using SetFn = void (*)(int);
  static const auto set = reinterpret_cast<SetFn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set && n >= 1) set(n);
}

}  // namespace cg
