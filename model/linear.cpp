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
  at::Tensor y = at::linear(h, weight);  // (..., out_features_local)
  if (post) y = post(y);
  if (delta) y = delta(x, y);
  return y;
}

at::Tensor fuse_linears(const std::vector<LinearImpl*>& parts, const std::string& what) {
  CG_CHECK(!parts.empty(), "{}: nothing to fuse", what);
  std::vector<at::Tensor> weights;
  for (auto* l : parts) {
    CG_CHECK(!l->delta, "{}: {} has a LoRA delta hook; merge the adapters (lora::merge_lora) before fusing the "
             "projections", what, l->hf_name);
    CG_CHECK(l->in_features_local == parts[0]->in_features_local && bool(l->pre) == bool(parts[0]->pre) && !l->post,
             "{}: {} does not read the same input as {} (in {} vs {}, pre/post hooks)", what, l->hf_name,
             parts[0]->hf_name, l->in_features_local, parts[0]->in_features_local);
    weights.push_back(l->weight);
  }
  at::NoGradGuard no_grad;
  const at::Tensor fused = at::cat(weights, 0);  // (sum out_local, in_local)
  int64_t row = 0;
  for (auto* l : parts) {
    const int64_t n = l->weight.size(0);
    l->weight.set_data(fused.narrow(0, row, n));  // the registered parameter now reads the fused rows
    row += n;
  }
  return fused;
}

at::Tensor fused_linear_forward(const std::vector<LinearImpl*>& parts, const at::Tensor& fused, const at::Tensor& x) {
  for (auto* l : parts)
    CG_CHECK(!l->delta, "{} got a LoRA delta hook after its projections were fused; fuse after merging", l->hf_name);
  return at::linear(parts[0]->pre ? parts[0]->pre(x) : x, fused);
}

}  // namespace cg::model
