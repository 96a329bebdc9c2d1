#include "model/attention.h"

#include <torch/torch.h>
#include <torch/version.h>

#include "common/error.h"
#include "model/rope.h"

namespace cg::model {

at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                bool is_causal) {
  c10::optional<at::Tensor> m;
  if (mask.defined()) m = mask;
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, m, 0.0, is_causal);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, m, 0.0, /*need_attn_weights=*/false, is_causal));
#endif
}

AttentionImpl::AttentionImpl(const std::string& prefix, const LlamaConfig& cfg, TpShape tp,
                             const at::TensorOptions& options)
    : n_heads_local(tp_local(cfg.num_attention_heads, tp.size, "num_attention_heads")),
      n_kv_heads_local(tp_local(cfg.num_key_value_heads, tp.size, "num_key_value_heads")),
      head_dim(cfg.head_dim()) {
  const int64_t d = cfg.hidden_size, kv = cfg.num_key_value_heads * head_dim;
  q_proj = register_module("q_proj", Linear(prefix + ".q_proj", d, d, ParallelStyle::Column, tp, options));
  k_proj = register_module("k_proj", Linear(prefix + ".k_proj", d, kv, ParallelStyle::Column, tp, options));
  v_proj = register_module("v_proj", Linear(prefix + ".v_proj", d, kv, ParallelStyle::Column, tp, options));
  o_proj = register_module("o_proj", Linear(prefix + ".o_proj", d, d, ParallelStyle::Row, tp, options));
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                  int64_t start_pos, at::Tensor* k_cache, at::Tensor* v_cache) {
  const int64_t B = x.size(0), T = x.size(1);
  auto q = q_proj(x).view({B, T, n_heads_local, head_dim}).transpose(1, 2);     // (B, n_heads_local, T, hd)
  auto k = k_proj(x).view({B, T, n_kv_heads_local, head_dim}).transpose(1, 2);  // (B, n_kv_local, T, hd)
  auto v = v_proj(x).view({B, T, n_kv_heads_local, head_dim}).transpose(1, 2);  // (B, n_kv_local, T, hd)
  q = apply_rope(q, cos, sin);
  k = apply_rope(k, cos, sin);

  int64_t S = T;  // key positions seen
  if (k_cache && k_cache->defined()) {
    CG_CHECK(start_pos + T <= k_cache->size(2), "KV cache holds {} positions but the step needs {}; make the cache "
             "longer (max_len)", k_cache->size(2), start_pos + T);
    CG_CHECK(k_cache->size(0) == B, "KV cache batch {} != input batch {}", k_cache->size(0), B);
    k_cache->narrow(2, start_pos, T).copy_(k);
    v_cache->narrow(2, start_pos, T).copy_(v);
    S = start_pos + T;
    k = k_cache->narrow(2, 0, S);  // (B, n_kv_local, S, hd)
    v = v_cache->narrow(2, 0, S);
  } else {
    CG_CHECK(start_pos == 0, "start_pos {} needs a KV cache holding the earlier positions", start_pos);
  }
  // GQA: query head h uses kv head h / n_rep (HF repeat_kv: each kv head repeated n_rep times in a row).
  const int64_t n_rep = n_heads_local / n_kv_heads_local;
  if (n_rep > 1) {
    k = k.unsqueeze(2).expand({B, n_kv_heads_local, n_rep, S, head_dim}).reshape({B, n_heads_local, S, head_dim});
    v = v.unsqueeze(2).expand({B, n_kv_heads_local, n_rep, S, head_dim}).reshape({B, n_heads_local, S, head_dim});
  }
  at::Tensor out;  // (B, n_heads_local, T, hd)
  if (T == 1) {
    out = sdpa(q, k, v, at::Tensor(), false);  // one query at the newest position sees every cached key
  } else if (S == T) {
    out = sdpa(q, k, v, at::Tensor(), true);
  } else {
    // Chunked prefill after earlier positions: query i (position start_pos + i) sees keys [0, start_pos + i].
    const auto opt = at::TensorOptions().dtype(at::kLong).device(x.device());
    const auto mask = at::arange(S, opt).unsqueeze(0) <= (at::arange(T, opt) + start_pos).unsqueeze(1);  // (T, S)
    out = sdpa(q, k, v, mask, false);
  }
  out = out.transpose(1, 2).reshape({B, T, n_heads_local * head_dim});  // (B, T, d_local)
  return o_proj(out);
}

}  // namespace cg::model
