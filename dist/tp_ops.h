// Tensor-parallel primitives, one autograd function per collective (Megatron mappings). Identity when tp = 1.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>

#include "dist/comm.h"

namespace cg::dist {

// forward: identity;            backward: all-reduce(sum) over tp.
at::Tensor copy_to_tp(const at::Tensor& x, const CommPtr& tp);

// One copy_to_tp shared by `readers` column-parallel layers that read the same input (q, k, v; gate, up): under
// autograd the first reader makes the copy and the others reuse it, so backward all-reduces the input gradient once
// per group (Megatron's layout); after the last reader nothing of it is kept (no activation outlives its layer
// through the hook, activation checkpointing included). Without autograd the copy is the identity: nothing shared.
std::function<at::Tensor(const at::Tensor&)> shared_copy_to_tp(const CommPtr& tp, int readers);
// forward: all-reduce(sum);     backward: identity.
at::Tensor reduce_from_tp(const at::Tensor& x, const CommPtr& tp);
// forward: keep this rank's slice of the last dim;  backward: all-gather along the last dim.
at::Tensor scatter_to_tp(const at::Tensor& x, const CommPtr& tp);
// forward: all-gather along the last dim;           backward: keep this rank's slice.
at::Tensor gather_from_tp(const at::Tensor& x, const CommPtr& tp);

}  // namespace cg::dist
