// Checks for external calls, made where the call is made: CG_CHECK_MPI, CG_CHECK_NCCL, CG_CHECK_CUDA throw
// cg::CallError (common/error.h) with file:line, the call's text and the library's error string (run_main turns
// it into an abort of every rank, at once: a failed call is its rank's own, never an error every rank meets alike).
// The macros name MPI/NCCL/CUDA symbols only when expanded, so this header includes none of those libraries: a .cpp
// that uses CG_CHECK_NCCL includes <nccl.h> itself.
#pragma once
#include <string>

#include "common/error.h"

namespace cg::dist::detail {
// MPI_Error_string of `code` (defined in runtime.cpp, which links MPI).
std::string mpi_error_string(int code);
// Throws CallError("file:line: msg"), file without its folders, as CG_CHECK's message reads.
[[noreturn]] void throw_call_error(const char* file, int line, const std::string& msg);
}  // namespace cg::dist::detail

#define CG_CHECK_MPI(call)                                                                                \
  do {                                                                                                    \
    const int cg_mpi_rc_ = (call);                                                                        \
    if (cg_mpi_rc_ != 0 /* MPI_SUCCESS */)                                                                \
      ::cg::dist::detail::throw_call_error(__FILE__, __LINE__,                                            \
                                           fmt::format("MPI call failed: {}: {}", #call,                  \
                                                       ::cg::dist::detail::mpi_error_string(cg_mpi_rc_))); \
  } while (0)

// ncclInProgress is not an error: it is what a non-blocking communicator returns while work is being enqueued.
#define CG_CHECK_NCCL(call)                                                                                   \
  do {                                                                                                        \
    const ncclResult_t cg_nccl_rc_ = (call);                                                                  \
    if (cg_nccl_rc_ != ncclSuccess && cg_nccl_rc_ != ncclInProgress)                                          \
      ::cg::dist::detail::throw_call_error(__FILE__, __LINE__,                                                \
                                           fmt::format("NCCL call failed: {}: {} ({})", #call,                \
                                                       ncclGetErrorString(cg_nccl_rc_), ncclGetLastError(nullptr))); \
  } while (0)

#define CG_CHECK_CUDA(call)                                                                                \
  do {                                                                                                     \
    const cudaError_t cg_cuda_rc_ = (call);                                                                \
    if (cg_cuda_rc_ != cudaSuccess)                                                                        \
      ::cg::dist::detail::throw_call_error(__FILE__, __LINE__,                                             \
                                           fmt::format("CUDA call failed: {}: {} ({})", #call,             \
                                                       cudaGetErrorName(cg_cuda_rc_),                      \
                                                       cudaGetErrorString(cg_cuda_rc_)));                  \
  } while (0)
