#include "model/linear.h"

#include "common/error.h"

namespace cg::model {

const char* to_string(ParallelStyle s) {
  switch (s) {
    case ParallelStyle::None: return "none";
    case ParallelStyle::Column: return "column";
    case ParallelStyle::Row: return "row";
    case ParallelStyle::Vocab: return "vocab";
  }
  return "?";
}

int64_t tp_local(int64_t n, int tp, const std::string& what) {
  CG_CHECK(tp > 0 && n % tp == 0, "{} {} is not divisible by tp {}; pick a parallel.tp that divides it", what, n, tp);
  return n / tp;
}

LinearImpl::LinearImpl(std::string name, int64_t in, int64_t out, ParallelStyle style_, TpShape tp_,
                       const at::TensorOptions& options)
    : hf_name(std::move(name)),
      in_features(in),
      out_features(out),
      in_features_local(style_ == ParallelStyle::Row ? tp_local(in, tp_.size, hf_name + " in_features") : in),
      out_features_local(style_ == ParallelStyle::Column ? tp_local(out, tp_.size, hf_name + " out_features")
                                                          : out),
      style(style_),
      tp(tp_) {
  CG_CHECK(style != ParallelStyle::Vocab, "{}: a Linear is None, Column or Row parallel", hf_name);
  weight = register_parameter("weight", at::empty({out_features_local, in_features_local}, options),
                              /*requires_grad=*/true);
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
  if (tp.size > 1) {
    // Without the tp hooks the gradients (column) or the outputs (row) would be silently wrong.
    CG_CHECK(style != ParallelStyle::Column || pre, "{}: column-parallel at tp {} without its copy_to_tp hook; "
             "call dist::apply_tensor_parallel after building the model", hf_name, tp.size);
    CG_CHECK(style != ParallelStyle::Row || post, "{}: row-parallel at tp {} without its reduce_from_tp hook; "
             "call dist::apply_tensor_parallel after building the model", hf_name, tp.size);
  }
  at::Tensor h = pre ? pre(x) : x;
  at::Tensor y = at::matmul(h, weight.t());  // (..., out_features_local)
  if (post) y = post(y);
  if (delta) y = y + delta(x);
  return y;
}

}  // namespace cg::model
