// Grouped-query self-attention with rotary embeddings, built at its tp-local head counts. Causal attention: on CPU
// without a KV cache (training, prefill) a block-causal kernel with its own backward (causal_attention); on GPU and
// with a cache the fused SDPA.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "model/kv_cache.h"
#include "model/linear.h"
#include "model/llama_config.h"

namespace cg::model {

class AttentionImpl : public torch::nn::Module {
 public:
  // prefix: "model.layers.{i}.self_attn". Heads and kv heads are divided by tp (errors name both numbers).
  AttentionImpl(const std::string& prefix, const LlamaConfig& cfg, TpShape tp, const at::TensorOptions& options);

  // x (B, T, d), cos/sin (T, head_dim) for positions [start_pos, start_pos + T).
  // k_cache/v_cache (B, n_kv_local, max_len, head_dim) or undefined: when given, this step's keys/values are
  // written at [start_pos, start_pos + T) and attention sees positions [0, start_pos + T).
  // rows (a decode step, T == 1, with a cache): every row at its own position instead of start_pos (see
  // RowPositions); cos/sin then (B, 1, 1, head_dim).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t start_pos,
                     at::Tensor* k_cache, at::Tensor* v_cache, const RowPositions* rows = nullptr);

  // Inference only (sampling, after LoRA is merged): q/k/v become one (q + k + v rows, d) weight, one matmul instead
  // of three and one RoPE call over the q and k heads instead of two. The three weights stay (views into it), so
  // parameters(), param_specs() and saving see the same tensors. Fails if a projection has a LoRA delta hook.
  void fuse_projections();
  bool fused() const { return qkv_weight.defined(); }

  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  const int64_t n_heads_local, n_kv_heads_local, head_dim;

 private:
  at::Tensor qkv_weight;  // (n_heads_local + 2 n_kv_heads_local) head_dim rows, after fuse_projections
};
TORCH_MODULE(Attention);

// Fused scaled-dot-product attention over libtorch 1.13 / 2.x. q (B, H, T, hd), k/v (B, H, S, hd);
// mask: bool (T, S), true = attend, or undefined; is_causal only with S == T and no mask.
at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                bool is_causal);

// sdpa with grouped-query k/v: q (B, H, T, hd), k/v (B, H_kv, S, hd), H_kv dividing H; query head h reads kv head
// h / (H / H_kv) (HF repeat_kv). On torch >= 2.5, where the flash kernel can run (CUDA, bf16/fp16, no mask,
// head_dim <= 256), enable_gqa lets it read each kv head once; otherwise k/v are repeated to H heads first.
at::Tensor sdpa_gqa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                    bool is_causal);

// The per-row products of decode attention, bitwise at::matmul(q, k.transpose(2, 3)) and at::matmul(p, v): on a CPU
// in fp32 one BLAS sgemm per (row, kv head) called directly, the calls bmm would make without its per-entry operator
// overhead. q (n, n_kv, R, hd), k/v (n, n_kv, S, hd) (views of the KV cache), p (n, n_kv, R, S).
at::Tensor decode_scores(const at::Tensor& q, const at::Tensor& k);  // (n, n_kv, R, S)
at::Tensor decode_values(const at::Tensor& p, const at::Tensor& v);  // (n, n_kv, R, hd)

// Query positions per block of causal_attention. Smaller blocks skip more of the masked scores (at T = 512: 47% with
// 32, 44% with 64, 37% with 128) but make smaller matmuls; 24-32 measured fastest for the tiny flavor on CPU
// (bench_attention: 61 ms at 32, 74 ms at 64, 92 ms at 128, 283 ms for the full-T fused SDPA).
constexpr int64_t kCausalAttentionBlock = 32;

// Causal self-attention softmax(q k^T / sqrt(hd) + causal mask) v with GQA (query head h uses kv head h / (H / H_kv),
// HF repeat_kv), for S == T: q (B, H, T, hd), k/v (B, H_kv, T, hd), H_kv dividing H -> (B, T, H, hd).
// Query blocks of `block` positions attend only to keys up to their last position, so about half of the (T, T)
// scores are never computed; the R = H / H_kv heads sharing a kv head form one matrix against it, so k/v are not
// repeated. Saves q, k, v, the output and the probabilities; its backward is hand-written (an autograd Function,
// first-order only). Any device and float dtype; the model uses it on CPU.
at::Tensor causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            int64_t block = kCausalAttentionBlock);

}  // namespace cg::model
