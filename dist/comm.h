// Comm: one process group's collectives behind a small interface. MpiComm moves CPU tensors, NcclComm CUDA tensors.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cg::dist {

enum class ReduceOp { Sum, Max, Min };

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;  // rank inside this group
  virtual int size() const = 0;  // ranks in this group
  virtual std::string backend() const = 0;  // "mpi" | "nccl"

  // In place on a contiguous tensor; every rank ends with the reduction over the group.
  virtual void all_reduce(at::Tensor& t, ReduceOp op = ReduceOp::Sum) = 0;
  // Concatenate every rank's `t` (same shape on all ranks) along `dim`, in rank order.
  virtual at::Tensor all_gather(const at::Tensor& t, int64_t dim) = 0;
  // In place: every rank ends with root's values.
  virtual void broadcast(at::Tensor& t, int root) = 0;
  virtual void barrier() = 0;
};

using CommPtr = std::shared_ptr<Comm>;

// all_gather along any `dim` through a backend's whole-buffer gather (MPI_Allgather, ncclAllGather), which
// concatenates along dim 0: moves `dim` to the front, calls gather0(send (d_dim, ...rest) contiguous,
// recv (size * d_dim, ...rest) with rank r's block at r * d_dim), then moves `dim` back.
at::Tensor all_gather_via_dim0(const at::Tensor& t, int64_t dim, int group_size,
                               const std::function<void(const at::Tensor& send, at::Tensor& recv)>& gather0);

// A group of one rank: every collective is the identity. Used when tp = 1 or dp = 1 and in single-process tools.
CommPtr make_self_comm();

}  // namespace cg::dist
