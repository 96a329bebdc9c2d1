// OpenBLAS's own thread pool, found at run time (dlsym), so nothing links against OpenBLAS and other BLAS libraries
// are left alone. Debian's pthread OpenBLAS ignores torch's thread setting and starts one thread per core.
#pragma once

namespace cg {

// OpenBLAS's pool size, or -1 when the process has no OpenBLAS.
int openblas_threads();
// Sets OpenBLAS's pool size (n >= 1); no-op without OpenBLAS.
void set_openblas_threads(int n);

// Single-threaded OpenBLAS for a scope whose own threads each call BLAS (a parallel region over independent
// problems), restored after: otherwise every call would also fan out to the pool and the threads fight over cores.
// active = false: a no-op (the scope runs on one thread and may keep OpenBLAS's pool).
class OpenBlasSingleThreaded {
 public:
  explicit OpenBlasSingleThreaded(bool active = true) : saved_(active ? openblas_threads() : -1) {
    if (saved_ > 1) set_openblas_threads(1);
  }
  ~OpenBlasSingleThreaded() {
    if (saved_ > 1) set_openblas_threads(saved_);
  }
  OpenBlasSingleThreaded(const OpenBlasSingleThreaded&) = delete;
  OpenBlasSingleThreaded& operator=(const OpenBlasSingleThreaded&) = delete;

 private:
  int saved_;
};

}  // namespace cg
