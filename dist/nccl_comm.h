// NcclComm: collectives over NCCL for CUDA tensors, on the legacy default CUDA stream (the stream libtorch uses unless
// a caller switches streams), so they are ordered with torch's own kernels without extra synchronisation.
// Init and every collective are checked; a watchdog thread aborts the job when work is stuck longer than
// CG_NCCL_TIMEOUT_S seconds (default 600) instead of letting every rank hang.
#pragma once
#include <string>

#include "dist/comm.h"

namespace cg::dist {

// An NCCL group over the same ranks, in the same order, as `mpi_group` (which carries the unique id), using CUDA
// device `device` on this rank. Collective over mpi_group. Throws in a build without NCCL.
CommPtr make_nccl_comm(const CommPtr& mpi_group, int device);
// Makes CUDA device `device` this process's current one: each rank's own GPU, before any CUDA work, so that no rank
// opens a context on another GPU (GPU 0 above all). Throws in a build without NCCL.
void set_cuda_device(int device);
// Whether this build has the NCCL backend (nccl.h and cuda_runtime.h were found at configure time).
bool nccl_compiled();
// CUDA devices this process can use: 0 without a driver or a GPU, and in a build without NCCL.
int cuda_device_count();
// The CUDA device's name as the driver reports it ("NVIDIA H100 80GB HBM3"); "" when unknown or without CUDA.
std::string cuda_device_name(int device);
// The CUDA device's PCI bus id ("0000:1a:00.0"), the same in every process whatever CUDA_VISIBLE_DEVICES says; ""
// when unknown or without CUDA.
std::string cuda_device_pci_bus_id(int device);
// The CUDA device's memory in bytes as the driver reports it; 0 when unknown or without CUDA.
double cuda_device_memory_bytes(int device);
// Memory in use on the current CUDA device as the driver sees it (total - free: torch's caching allocator's reserve,
// which it keeps, plus the CUDA/NCCL contexts), in bytes; < 0 when unknown or without CUDA.
double cuda_memory_used_bytes();

}  // namespace cg::dist
