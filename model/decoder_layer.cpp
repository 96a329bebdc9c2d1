#include "model/decoder_layer.h"

#include <torch/torch.h>

#include "common/error.h"

namespace cg::model {

DecoderLayerImpl::DecoderLayerImpl(int64_t index, const LlamaConfig& cfg, TpShape tp,
                                   const at::TensorOptions& options) {
  const std::string prefix = "model.layers." + std::to_string(index);
  input_layernorm = register_module("input_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, options));
  self_attn = register_module("self_attn", Attention(prefix + ".self_attn", cfg, tp, options));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, options));
  mlp = register_module("mlp", Mlp(prefix + ".mlp", cfg, tp, options));
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                     int64_t start_pos, at::Tensor* k_cache, at::Tensor* v_cache,
                                     const RowPositions* rows) {
  if (fused_) {
    const auto [h, m] = forward_fused(x, at::Tensor(), cos, sin, start_pos, k_cache, v_cache, rows);
    return h + m;
  }
  const auto h = x + self_attn(input_layernorm(x), cos, sin, start_pos, k_cache, v_cache, rows);  // (B, T, d)
  return h + mlp(post_attention_layernorm(h));                                             // (B, T, d)
}

std::pair<at::Tensor, at::Tensor> DecoderLayerImpl::forward_fused(const at::Tensor& h, const at::Tensor& m,
                                                                  const at::Tensor& cos, const at::Tensor& sin,
                                                                  int64_t start_pos, at::Tensor* k_cache,
                                                                  at::Tensor* v_cache, const RowPositions* rows) {
  CG_CHECK(fused_, "DecoderLayer::forward_fused needs fuse_for_inference first");
  at::Tensor x, x2;                                                      // h + m, x + attention
  const auto a = self_attn(input_layernorm->forward_fused(h, m, &x), cos, sin, start_pos, k_cache, v_cache, rows);
  const auto n = post_attention_layernorm->forward_fused(x, a, &x2);
  return {x2, mlp(n)};
}

void DecoderLayerImpl::fuse_for_inference() {
  self_attn->fuse_projections();
  mlp->fuse_projections();
  input_layernorm->fuse_for_inference();
  post_attention_layernorm->fuse_for_inference();
  fused_ = true;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The default generators a layer may draw from (CPU always, plus the tensor's accelerator).
std::vector<at::Generator> generators_for(const at::Tensor& x, const std::vector<at::Generator>& extra) {
  std::vector<at::Generator> g{at::globalContext().defaultGenerator(at::Device(at::kCPU))};
  if (!x.is_cpu()) g.push_back(at::globalContext().defaultGenerator(x.device()));
  g.insert(g.end(), extra.begin(), extra.end());
  return g;
}

std::vector<at::Tensor> get_rng(const std::vector<at::Generator>& gens) {
  std::vector<at::Tensor> s;
  for (auto g : gens) {  // Generator is a shared handle
    std::lock_guard<std::mutex> lock(g.mutex());
    s.push_back(g.get_state());
  }
  return s;
}

void set_rng(std::vector<at::Generator>& gens, const std::vector<at::Tensor>& states) {
  for (size_t i = 0; i < gens.size(); ++i) {
    std::lock_guard<std::mutex> lock(gens[i].mutex());
    gens[i].set_state(states[i]);
  }
}

// forward: the layer without saving activations;  backward: rerun the layer under grad, backpropagate through it.
struct CheckpointLayer : torch::autograd::Function<CheckpointLayer> {
  static at::Tensor forward(AutogradContext* ctx, DecoderLayerImpl* layer, const std::vector<at::Generator>* extra,
                            const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                            at::TensorList params) {
    ctx->saved_data["layer"] = reinterpret_cast<int64_t>(layer);
    ctx->saved_data["generators"] = c10::IValue(c10::List<at::Generator>(*extra));
    ctx->saved_data["n_params"] = static_cast<int64_t>(params.size());
    ctx->saved_data["rng"] = get_rng(generators_for(x, *extra));
    ctx->save_for_backward({x, cos, sin});
    return layer->forward(x, cos, sin);  // grad mode is off here
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    const auto n_params = ctx->saved_data["n_params"].toInt();
    const auto saved = ctx->get_saved_variables();
    const auto extra = ctx->saved_data["generators"].toList();
    std::vector<at::Generator> extra_gens;
    for (const auto& g : extra) extra_gens.push_back(g.get().toGenerator());
    auto gens = generators_for(saved[0], extra_gens);
    const auto rng_now = get_rng(gens);
    set_rng(gens, ctx->saved_data["rng"].toTensorVector());

    const at::Tensor x = saved[0].detach().requires_grad_(true);
    at::Tensor y;
    {
      torch::AutoGradMode grad_on(true);
      y = layer->forward(x, saved[1], saved[2]);  // (B, T, d), recomputed with its graph
    }
    set_rng(gens, rng_now);

    // Accumulate into every trainable leaf of the recomputed graph (base weights, LoRA's, wherever registered),
    // like PyTorch's reentrant checkpoint; x is a fresh leaf, so x.grad() is exactly its gradient.
    torch::autograd::backward({y}, {grad_out[0]});
    variable_list out{at::Tensor(), at::Tensor(), x.grad(), at::Tensor(), at::Tensor()};  // layer, gens, x, cos, sin
    out.resize(out.size() + n_params);  // params: already accumulated above
    return out;
  }
};

}  // namespace

at::Tensor DecoderLayerImpl::forward_checkpointed(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                                  const std::vector<at::Generator>& generators) {
  // The trainable parameters are inputs only so that the output requires grad even when x does not (frozen
  // embeddings + LoRA); their gradients are accumulated in backward. Hooks must register their parameters under
  // this layer's modules (LoRA does) for that to work.
  std::vector<at::Tensor> trainable;
  for (const auto& p : parameters())
    if (p.requires_grad()) trainable.push_back(p);
  return CheckpointLayer::apply(this, &generators, x, cos, sin, at::TensorList(trainable));
}

}  // namespace cg::model
