// Tensor-parallel primitives (Megatron's mappings.py): each an autograd Function named for its collective.
#include "dist/tp_ops.h"

#include <torch/torch.h>

#include "common/error.h"
#include "dist/autograd_comm.h"

namespace cg::dist {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using detail::comm_from_ivalue;
using detail::comm_to_ivalue;

at::Tensor all_reduce_copy(const at::Tensor& x, Comm& comm) {
  at::Tensor out = x.contiguous().clone();
  comm.all_reduce(out, ReduceOp::Sum);
  return out;
}

// This rank's contiguous slice of the last dim: (..., D) -> (..., D / tp).
at::Tensor local_slice(const at::Tensor& x, const Comm& comm) {
  const int64_t d = x.size(-1);
  const int64_t d_local = cg::divide(d, comm.size(), "tensor-parallel split of the last dim by tp");
  return x.narrow(-1, comm.rank() * d_local, d_local).contiguous();
}

// forward: identity; backward: all-reduce(sum) of the gradient over tp.
struct CopyToTp : torch::autograd::Function<CopyToTp> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const CommPtr& tp) {
    ctx->saved_data["comm"] = comm_to_ivalue(tp);
    return x;
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    return {all_reduce_copy(g[0], *comm_from_ivalue(ctx->saved_data["comm"])), at::Tensor()};
  }
};

// forward: all-reduce(sum) over tp; backward: identity.
struct ReduceFromTp : torch::autograd::Function<ReduceFromTp> {
  static at::Tensor forward(AutogradContext*, const at::Tensor& x, const CommPtr& tp) {
    return all_reduce_copy(x, *tp);
  }
  static variable_list backward(AutogradContext*, variable_list g) { return {g[0], at::Tensor()}; }
};

// forward: keep this rank's slice of the last dim; backward: all-gather the gradient along the last dim.
struct ScatterToTp : torch::autograd::Function<ScatterToTp> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const CommPtr& tp) {
    ctx->saved_data["comm"] = comm_to_ivalue(tp);
    return local_slice(x, *tp);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    return {comm_from_ivalue(ctx->saved_data["comm"])->all_gather(g[0].contiguous(), -1), at::Tensor()};
  }
};

// forward: all-gather along the last dim; backward: keep this rank's slice of the gradient.
struct GatherFromTp : torch::autograd::Function<GatherFromTp> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const CommPtr& tp) {
    ctx->saved_data["comm"] = comm_to_ivalue(tp);
    return tp->all_gather(x.contiguous(), -1);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    return {local_slice(g[0], *comm_from_ivalue(ctx->saved_data["comm"])), at::Tensor()};
  }
};

bool single(const CommPtr& tp) {
  TORCH_CHECK(tp, "tensor-parallel op given a null CommPtr; pass ParallelDims::tp_comm (or make_self_comm())");
  return tp->size() == 1;
}

}  // namespace

at::Tensor copy_to_tp(const at::Tensor& x, const CommPtr& tp) { return single(tp) ? x : CopyToTp::apply(x, tp); }

std::function<at::Tensor(const at::Tensor&)> shared_copy_to_tp(const CommPtr& tp, int readers) {
  struct Shared {
    at::Tensor in, out;  // held from the first reader to the last only
    int64_t version = -1;
    int left = 0;        // readers still to come
  };
  auto memo = std::make_shared<Shared>();
  return [tp, memo, readers](const at::Tensor& x) {
    if (!at::GradMode::is_enabled()) {  // and a group left unfinished (an exception mid-layer) lets go here too
      memo->in.reset(), memo->out.reset(), memo->left = 0;
      return copy_to_tp(x, tp);
    }
    if (memo->left > 0 && memo->in.is_same(x) && memo->version == static_cast<int64_t>(x._version())) {
      at::Tensor out = memo->out;
      if (--memo->left == 0) memo->in.reset(), memo->out.reset();
      return out;
    }
    at::Tensor out = copy_to_tp(x, tp);
    if (readers > 1) {
      memo->in = x;
      memo->version = static_cast<int64_t>(x._version());
      memo->out = out;
      memo->left = readers - 1;
    }
    return out;
  };
}
at::Tensor reduce_from_tp(const at::Tensor& x, const CommPtr& tp) { return single(tp) ? x : ReduceFromTp::apply(x, tp); }
at::Tensor scatter_to_tp(const at::Tensor& x, const CommPtr& tp) { return single(tp) ? x : ScatterToTp::apply(x, tp); }
at::Tensor gather_from_tp(const at::Tensor& x, const CommPtr& tp) { return single(tp) ? x : GatherFromTp::apply(x, tp); }

}  // namespace cg::dist
