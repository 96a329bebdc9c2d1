// Tensor-parallel primitives, one autograd function per collective (Megatron mappings). Identity when tp = 1.
#pragma once
#include <ATen/core/Tensor.h>

#include "dist/comm.h"

namespace cg::dist {

// forward: identity;            backward: all-reduce(sum) over tp.
at::Tensor copy_to_tp(const at::Tensor& x, const CommPtr& tp);
// forward: all-reduce(sum);     backward: identity.
at::Tensor reduce_from_tp(const at::Tensor& x, const CommPtr& tp);
// forward: keep this rank's slice of the last dim;  backward: all-gather along the last dim.
at::Tensor scatter_to_tp(const at::Tensor& x, const CommPtr& tp);
// forward: all-gather along the last dim;           backward: keep this rank's slice.
at::Tensor gather_from_tp(const at::Tensor& x, const CommPtr& tp);

}  // namespace cg::dist
