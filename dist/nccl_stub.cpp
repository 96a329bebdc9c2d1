// The NCCL backend's entry points in a build without nccl.h/cuda_runtime.h: report that it is absent.
#include "common/error.h"
#include "dist/nccl_comm.h"

namespace cg::dist {

CommPtr make_nccl_comm(const CommPtr&, int) {
  CG_FAIL("this build has no NCCL backend (nccl.h/cuda_runtime.h were not found at configure time); "
          "use parallel.backend=mpi, or rebuild with CUDA and NCCL as in docs/gpu.md");
}
void set_cuda_device(int) {
  CG_FAIL("this build has no CUDA runtime (nccl.h/cuda_runtime.h were not found at configure time); rebuild with "
          "CUDA and NCCL as in docs/gpu.md");
}
bool nccl_compiled() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_device_name(int) { return ""; }
std::string cuda_device_pci_bus_id(int) { return ""; }
double cuda_device_memory_bytes(int) { return 0; }
double cuda_memory_used_bytes() { return -1; }

}  // namespace cg::dist
