#include "model/attention.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "common/blas_threads.h"
#include "common/error.h"
#include "model/decode_kernels.h"
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

at::Tensor sdpa_gqa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                    bool is_causal) {
  const int64_t H = q.size(1), Hkv = k.size(1);
  CG_CHECK(Hkv > 0 && H % Hkv == 0, "sdpa_gqa: {} query heads do not share {} kv heads evenly", H, Hkv);
  if (H == Hkv) return sdpa(q, k, v, mask, is_causal);
  const int64_t B = q.size(0), R = H / Hkv, S = k.size(2), hd = k.size(3);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
  // Only the flash kernel takes enable_gqa; SDPA sends every other case (a mask, fp32, head_dim > 256, a CPU) to
  // its math kernel, slower than repeating k/v for the memory-efficient or flash kernel.
  const bool flash_dtype = q.scalar_type() == at::kBFloat16 || q.scalar_type() == at::kHalf;
  if (!mask.defined() && q.is_cuda() && flash_dtype && hd <= 256)
    return at::scaled_dot_product_attention(q, k, v, c10::nullopt, 0.0, is_causal, /*scale=*/c10::nullopt,
                                            /*enable_gqa=*/true);
#endif
  const auto kr = k.unsqueeze(2).expand({B, Hkv, R, S, hd}).reshape({B, H, S, hd});
  const auto vr = v.unsqueeze(2).expand({B, Hkv, R, S, hd}).reshape({B, H, S, hd});
  return sdpa(q, kr, vr, mask, is_causal);
}

// The per-row products of decode attention on a CPU: at::matmul sends (n, n_kv) batches of (n_rep x hd) x (hd x S)
// to bmm, which runs one BLAS sgemm per batch entry behind an operator call, two selects and addmm's checks each:
// at batch 32 those ~1,000 small calls a step cost more than their arithmetic (perf, 2026-12-07). For fp32 CPU
// tensors the loop below calls sgemm itself with the arguments bmm passes (transposes, sizes, leading dimensions:
// ATen's addmm_impl_cpu_ for these layouts), so every product is the same BLAS call and the results are bitwise
// those of at::matmul (tested). Below 400 multiply-adds bmm uses its own loop instead of BLAS: so does this.
namespace {

using SgemmFn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                         const int*, const float*, const int*, const float*, float*, const int*);

SgemmFn cpu_sgemm() {  // the BLAS libtorch calls (libblas.so.3 -> OpenBLAS here); null: at::matmul
  static const auto fn = reinterpret_cast<SgemmFn>(::dlsym(RTLD_DEFAULT, "sgemm_"));
  return fn;
}

// Whether a (b0, b1, rows, cols) view can go to the loop: fp32 on the CPU, rows of unit stride, no negative or
// overflowing sizes for BLAS's int arguments.
bool sgemm_layout(const at::Tensor& t) {
  return t.is_cpu() && t.scalar_type() == at::kFloat && !t.requires_grad() && t.dim() == 4 && t.stride(3) == 1 &&
         t.stride(2) >= t.size(3) && t.numel() < (int64_t{1} << 31);
}

}  // namespace

// q (n, n_kv, R, hd) x k (n, n_kv, S, hd) transposed -> (n, n_kv, R, S): at::matmul(q, k.transpose(2, 3)).
at::Tensor decode_scores(const at::Tensor& q, const at::Tensor& k) {
  const int64_t n = q.size(0), n_kv = q.size(1), R = q.size(2), hd = q.size(3), S = k.size(2);
  const SgemmFn sgemm = cpu_sgemm();
  if (!sgemm || !sgemm_layout(q) || !sgemm_layout(k) || !q.is_contiguous() || hd * R * S < 400)
    return at::matmul(q, k.transpose(2, 3));
  auto out = at::empty({n, n_kv, R, S}, q.options());
  // Column-major, as bmm calls it: C^T (S x R) = K_b (hd x S, transposed) x q_b^T (hd x R).
  const int m = static_cast<int>(S), nn = static_cast<int>(R), kk = static_cast<int>(hd);
  const int lda = static_cast<int>(k.stride(2)), ldb = static_cast<int>(hd), ldc = m;
  const float one = 1, zero = 0;
  const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < n_kv; ++h)
      sgemm("T", "N", &m, &nn, &kk, &one, kp + i * k.stride(0) + h * k.stride(1), &lda, qp + (i * n_kv + h) * R * hd,
            &ldb, &zero, op + (i * n_kv + h) * R * S, &ldc);
  return out;
}

// p (n, n_kv, R, S) x v (n, n_kv, S, hd) -> (n, n_kv, R, hd): at::matmul(p, v).
at::Tensor decode_values(const at::Tensor& p, const at::Tensor& v) {
  const int64_t n = p.size(0), n_kv = p.size(1), R = p.size(2), S = p.size(3), hd = v.size(3);
  const SgemmFn sgemm = cpu_sgemm();
  // p's rows may be a narrowed view (its last dim unit-stride), but its heads and rows must merge as bmm's would.
  if (!sgemm || !sgemm_layout(p) || !sgemm_layout(v) || p.stride(1) != R * p.stride(2) || hd * R * S < 400)
    return at::matmul(p, v);
  auto out = at::empty({n, n_kv, R, hd}, p.options());
  // Column-major: C^T (hd x R) = V_b^T (hd x S) x P_b^T (S x R), neither transposed.
  const int m = static_cast<int>(hd), nn = static_cast<int>(R), kk = static_cast<int>(S);
  const int lda = static_cast<int>(v.stride(2)), ldb = static_cast<int>(p.stride(2)), ldc = m;
  const float one = 1, zero = 0;
  const float *pp = p.data_ptr<float>(), *vp = v.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < n_kv; ++h)
      sgemm("N", "N", &m, &nn, &kk, &one, vp + i * v.stride(0) + h * v.stride(1), &lda,
            pp + i * p.stride(0) + h * p.stride(1), &ldb, &zero, op + (i * n_kv + h) * R * hd, &ldc);
  return out;
}

namespace {

// Legend: N = B * n_kv (one kv head of one sequence), T positions, R = n_rep query heads per kv head, hd head_dim.
// Queries are laid out position-major, row t * R + r = (position t, query head kv * R + r), so the R heads sharing
// a kv head are one matrix against that kv head's K and V, and query block i (positions [t0, t1)) is the contiguous
// rows [t0 R, t1 R). Block i sees keys [0, t1): the blocks left of the diagonal unmasked, the diagonal block
// (keys [t0, t1)) masked above its diagonal, nothing right of it.
struct Blocks {
  int64_t T, bq, n;
  Blocks(int64_t T_, int64_t bq_) : T(T_), bq(std::min(bq_, T_)), n((T_ + bq - 1) / bq) {}
  int64_t t0(int64_t i) const { return i * bq; }
  int64_t len(int64_t i) const { return std::min(bq, T - t0(i)); }  // query positions in block i
  int64_t keys(int64_t i) const { return t0(i) + len(i); }          // t1: the keys block i sees
};

// (bq R, bq) bool, true where (row j = position j / R of the block, key c of the block) is in the future: c > j / R.
at::Tensor diagonal_mask(int64_t bq, int64_t R, const at::Device& device) {
  const auto opt = at::TensorOptions().dtype(at::kLong).device(device);
  return at::arange(bq, opt).unsqueeze(0) > at::arange(bq * R, opt).div(R, "floor").unsqueeze(1);
}

// Block-causal attention with a hand-written backward; the probabilities are saved per block.
// forward: P_i = softmax(Q_i K_{<t1}^T + causal mask), O_i = P_i V_{<t1} per query block i (Q comes pre-scaled).
// backward: dV = P^T dO, dS = P ∘ (dO V^T − rowsum(P ∘ dO V^T)), dQ = dS K, dK = dS^T Q, blockwise.
// Each block's P is its own tensor (a few MB) rather than a slice of one buffer over all blocks: the C allocator
// then recycles freed heap memory instead of mapping fresh pages per call, whose first-touch faults cost more than
// the QK^T product itself on CPU (measured: 50 -> 10-20 ms for the tiny shape's forward scores).
// Threads: the N independent (sequence, kv head) problems are split over torch's intra-op threads once per call
// (at::parallel_for), each thread running the whole block loop on its slice with single-threaded kernels (OpenBLAS
// too, for the call: common/blas_threads.h). Ops this small gain nothing from intra-op threading of their own, and a
// parallel region per op (dozens per call) cost more than it saved: at 2 threads the attention took longer than at
// 1. Every n is computed alike whatever the slicing, so the result does not depend on the thread count (with
// OpenBLAS; MKL rounds its products by its own thread count).
class BlockCausalAttention : public torch::autograd::Function<BlockCausalAttention> {
  // Whether at::parallel_for(0, N, 1, ...) will split the work (then OpenBLAS goes single-threaded for the call).
  static bool parallel(int64_t N) { return N > 1 && at::get_num_threads() > 1; }

 public:
  // q (N, T R, hd) pre-scaled by 1/sqrt(hd); k, v (N, T, hd). Returns O (N, T R, hd).
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q_in, const at::Tensor& k_in,
                            const at::Tensor& v_in, int64_t R, int64_t block) {
    const auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    const int64_t N = k.size(0), T = k.size(1), hd = k.size(2);
    const Blocks b(T, block);
    auto o = at::empty({N, T * R, hd}, q.options());
    const auto mask = diagonal_mask(b.bq, R, q.device());
    std::vector<at::Tensor> saved{q, k, v};
    for (int64_t i = 0; i < b.n; ++i) saved.push_back(at::empty({N, b.len(i) * R, b.keys(i)}, q.options()));
    OpenBlasSingleThreaded one_blas_thread(parallel(N));  // each of torch's threads multiplies on its own
    at::parallel_for(0, N, 1, [&](int64_t n0, int64_t n1) {
      at::NoGradGuard no_grad;  // grad mode is thread-local: the pool's threads do not inherit apply()'s
      const int64_t m = n1 - n0;
      const auto qs = q.narrow(0, n0, m), ks = k.narrow(0, n0, m), vs = v.narrow(0, n0, m);
      auto scores = at::empty({m * b.bq * R * T}, q.options());  // one block's (m, rows, t1) scores
      for (int64_t i = 0; i < b.n; ++i) {
        const int64_t t0 = b.t0(i), len = b.len(i), t1 = b.keys(i), rows = len * R;
        auto s = scores.narrow(0, 0, m * rows * t1).view({m, rows, t1});
        at::bmm_out(s, qs.narrow(1, t0 * R, rows), ks.narrow(1, 0, t1).transpose(1, 2));  // (m, rows, t1)
        s.narrow(2, t0, len).masked_fill_(mask.narrow(0, 0, rows).narrow(1, 0, len),
                                          -std::numeric_limits<double>::infinity());
        auto p = saved[3 + i].narrow(0, n0, m);  // (m, rows, t1), contiguous
        at::_softmax_out(p, s, -1, false);
        o.narrow(0, n0, m).narrow(1, t0 * R, rows).copy_(at::bmm(p, vs.narrow(1, 0, t1)));
      }
    });
    ctx->save_for_backward(saved);
    ctx->saved_data["R"] = R;
    ctx->saved_data["block"] = block;
    return o;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2];
    const int64_t R = ctx->saved_data["R"].toInt();
    const int64_t N = k.size(0), T = k.size(1);
    const Blocks b(T, ctx->saved_data["block"].toInt());
    const auto dout = grads[0].contiguous();  // (N, T R, hd)
    auto dq = at::empty_like(q), dk = at::zeros_like(k), dv = at::zeros_like(v);
    OpenBlasSingleThreaded one_blas_thread(parallel(N));
    at::parallel_for(0, N, 1, [&](int64_t n0, int64_t n1) {
      at::NoGradGuard no_grad;
      const int64_t m = n1 - n0;
      const auto qs = q.narrow(0, n0, m), ks = k.narrow(0, n0, m), vs = v.narrow(0, n0, m);
      const auto douts = dout.narrow(0, n0, m);
      auto dqs = dq.narrow(0, n0, m), dks = dk.narrow(0, n0, m), dvs = dv.narrow(0, n0, m);
      auto dp_ws = at::empty({m * b.bq * R * T}, q.options()), ds_ws = at::empty_like(dp_ws);  // one block each
      for (int64_t i = 0; i < b.n; ++i) {
        const int64_t t0 = b.t0(i), len = b.len(i), t1 = b.keys(i), rows = len * R;
        const auto p = saved[3 + i].narrow(0, n0, m);                                        // (m, rows, t1)
        const auto doi = douts.narrow(1, t0 * R, rows), qi = qs.narrow(1, t0 * R, rows);    // (m, rows, hd)
        const auto ki = ks.narrow(1, 0, t1), vi = vs.narrow(1, 0, t1);                      // (m, t1, hd)
        auto dvi = dvs.narrow(1, 0, t1), dki = dks.narrow(1, 0, t1);
        dvi.baddbmm_(p.transpose(1, 2), doi);
        auto dp = dp_ws.narrow(0, 0, m * rows * t1).view({m, rows, t1});
        auto ds = ds_ws.narrow(0, 0, m * rows * t1).view({m, rows, t1});
        at::bmm_out(dp, doi, vi.transpose(1, 2));
        at::_softmax_backward_data_out(ds, dp, p, -1, p.scalar_type());  // P ∘ (dP − rowsum(P ∘ dP)), 0 if masked
        dqs.narrow(1, t0 * R, rows).copy_(at::bmm(ds, ki));
        dki.baddbmm_(ds.transpose(1, 2), qi);
      }
    });
    return {dq, dk, dv, at::Tensor(), at::Tensor()};
  }
};

// Decode attention of n rows (one query position each) over a prefix shared by all rows plus each row's own keys:
// softmax over [q . prefix keys, q . own keys + mask], then the two halves times their values. The shared
// keys are one matrix per kv head against all n x n_rep queries (read once, not once per row). Every op here is a
// kernel launch on a GPU, repeated per chunk and layer: 7 of them without GQA (n_rep 1: 7B, 13B), 9 with.
// q (n, n_kv, n_rep, hd) pre-scaled by 1/sqrt(hd); k/v (n, n_kv, S, hd) the rows' own positions; prefix_k/v
// (1, n_kv, P, hd); mask (n, 1, 1, S) additive. Returns (n, n_kv, n_rep, hd).
at::Tensor prefix_decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                   const at::Tensor& prefix_k, const at::Tensor& prefix_v, const at::Tensor& mask) {
  const int64_t n = q.size(0), n_kv = q.size(1), n_rep = q.size(2), hd = q.size(3), P = prefix_k.size(2);
  const auto qh = q.permute({1, 0, 2, 3}).reshape({n_kv, n * n_rep, hd});                  // queries per kv head
  const auto sp = at::bmm(qh, prefix_k.select(0, 0).transpose(1, 2))                       // (n_kv, n n_rep, P)
                      .view({n_kv, n, n_rep, P})
                      .permute({1, 0, 2, 3});                                              // (n, n_kv, n_rep, P)
  const auto so = decode_scores(q, k) + mask;                                              // (n, n_kv, n_rep, S)
  // Softmax in q's dtype: it accumulates in fp32 (CUDA's and CPU's kernels for bf16/fp16), the probabilities are
  // rounded once, as a softmax in fp32 cast back would, without the two casts (kernels on a GPU).
  const auto probs = at::softmax(at::cat({sp, so}, -1), -1);                              // (n, n_kv, n_rep, P + S)
  const auto pp = probs.narrow(-1, 0, P).permute({1, 0, 2, 3}).reshape({n_kv, n * n_rep, P});
  const auto op = at::bmm(pp, prefix_v.select(0, 0)).view({n_kv, n, n_rep, hd}).permute({1, 0, 2, 3});
  // The row-major term first: the sum takes its layout, so the caller's reshape is a view, not a copy.
  return decode_values(probs.narrow(-1, P, probs.size(-1) - P), v) + op;
}

// Per-row decode attention without a shared prefix: the same plain matmuls and softmax as above. SDPA with a per-row
// additive mask cannot use the flash kernel, and the chunks' (rows, span) shapes change every step; on torch 2.11 /
// H200 that path ran ~110 ms a decode step at batch 256 against ~26 ms with the shared prefix (docs/performance.md,
// GPU). q comes pre-scaled.
at::Tensor rows_decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& mask) {
  const auto probs = at::softmax(decode_scores(q, k) + mask, -1);  // (n, n_kv, n_rep, S)
  return decode_values(probs, v);                                                     // (n, n_kv, n_rep, hd)
}

}  // namespace

at::Tensor causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t block) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.sizes() == k.sizes(), "causal_attention: q (B, H, T, hd), k/v "
              "(B, H_kv, T, hd) expected, got q ", q.sizes(), ", k ", k.sizes(), ", v ", v.sizes());
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), hd = q.size(3), Hkv = k.size(1);
  TORCH_CHECK(k.size(0) == B && k.size(2) == T && k.size(3) == hd && Hkv > 0 && H % Hkv == 0,
              "causal_attention: k/v ", k.sizes(), " do not fit q ", q.sizes(), " (same B, T, hd; H_kv divides H)");
  TORCH_CHECK(T > 0 && block > 0, "causal_attention: needs T > 0 and block > 0, got T ", T, ", block ", block);
  const int64_t R = H / Hkv;
  // (B, H_kv, R, T, hd) -> (B, H_kv, T, R, hd): position-major rows per kv head; scaling here scales (T, hd), not
  // the (T, T) scores.
  const auto qr = (q.view({B, Hkv, R, T, hd}).transpose(2, 3) * (1.0 / std::sqrt(double(hd))))
                      .contiguous()
                      .view({B * Hkv, T * R, hd});
  const auto o = BlockCausalAttention::apply(qr, k.reshape({B * Hkv, T, hd}), v.reshape({B * Hkv, T, hd}), R,
                                             block);  // (B H_kv, T R, hd)
  return o.view({B, Hkv, T, R, hd}).permute({0, 2, 1, 3, 4}).reshape({B, T, H, hd});
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
                                  int64_t start_pos, at::Tensor* k_cache, at::Tensor* v_cache,
                                  const RowPositions* rows) {
  const int64_t B = x.size(0), T = x.size(1);
  if (rows && rows->one_pass) {
    // One fused matmul, then the cache write and the attention in one call each (kernels on a GPU).
    CG_CHECK(fused() && k_cache && k_cache->defined() && v_cache && T == 1, "one-pass decode attention needs "
             "fuse_for_inference, a KV cache and one token per row");
    const int64_t Hq = n_heads_local, Hkv = n_kv_heads_local;
    const auto qkv = fused_linear_forward({q_proj.get(), k_proj.get(), v_proj.get()}, qkv_weight, x)
                         .view({B, Hq + 2 * Hkv, head_dim});
    const auto o = one_pass_decode_attention(qkv, rows->cos, rows->sin, rows->pos, *k_cache, *v_cache,
                                             rows->prefix_k, rows->prefix_v, Hq, Hkv);  // (B, Hq hd)
    return o_proj(o.view({B, 1, Hq * head_dim}));
  }
  at::Tensor q, k, v;  // (B, n_heads_local, T, hd), (B, n_kv_local, T, hd) x 2
  at::Tensor kv;  // decode with per-head RoPE tables: k and v adjacent, (B, 2 Hkv, 1, hd)
  if (fused()) {
    // One matmul, then RoPE over the q and k heads at once (decode_step's per-head tables: over all heads, v's
    // rotation the identity); q, k, v are views of the result.
    const int64_t Hq = n_heads_local, Hkv = n_kv_heads_local;
    const auto qkv = fused_linear_forward({q_proj.get(), k_proj.get(), v_proj.get()}, qkv_weight, x)
                         .view({B, T, Hq + 2 * Hkv, head_dim})
                         .transpose(1, 2);  // (B, Hq + 2 Hkv, T, hd)
    const bool all_heads = cos.dim() == 4 && cos.size(1) == Hq + 2 * Hkv;
    const auto roped = all_heads ? apply_rope(qkv, cos, sin) : apply_rope(qkv.narrow(1, 0, Hq + Hkv), cos, sin);
    q = roped.narrow(1, 0, Hq);
    k = roped.narrow(1, Hq, Hkv);
    v = all_heads ? roped.narrow(1, Hq + Hkv, Hkv) : qkv.narrow(1, Hq + Hkv, Hkv);
    if (all_heads) kv = roped.narrow(1, Hq, 2 * Hkv);
  } else {
    // RoPE on the projections' own (B, T, H, hd) layout, then the (B, H, T, hd) views attention takes.
    q = apply_rope_bthd(q_proj(x).view({B, T, n_heads_local, head_dim}), cos, sin).transpose(1, 2);
    k = apply_rope_bthd(k_proj(x).view({B, T, n_kv_heads_local, head_dim}), cos, sin).transpose(1, 2);
    v = v_proj(x).view({B, T, n_kv_heads_local, head_dim}).transpose(1, 2);
  }

  const bool cached = k_cache && k_cache->defined();
  const int64_t n_rep = n_heads_local / n_kv_heads_local;
  if (rows) {
    // Continuous batching: row b writes its key/value at pos[b] and attends to keys [0, pos[b]]: [0, P) from the
    // shared prefix when there is one, the rest from its cache row, up to its chunk's span (beyond pos[b] masked).
    CG_CHECK(cached && T == 1, "per-row positions are for one-token decode steps with a KV cache");
    CG_CHECK(k_cache->size(0) == B && rows->pos.size(0) == B, "KV cache batch {} / {} positions != input batch {}",
             k_cache->size(0), rows->pos.size(0), B);
    if (kv.defined() && rows->kv.defined()) {  // the cache's k and v are halves of rows->kv: one write
      const auto src = kv.view({B, 2, n_kv_heads_local, 1, head_dim}).transpose(0, 1);  // (2, B, n_kv, 1, hd)
      rows->kv.scatter_(3, rows->pos.view({1, B, 1, 1, 1}).expand(src.sizes()), src);
    } else {
      const auto idx = rows->pos.view({B, 1, 1, 1}).expand({B, n_kv_heads_local, 1, head_dim});
      k_cache->scatter_(2, idx, k);
      v_cache->scatter_(2, idx, v);
    }
    // GQA as in the decode branch below: a kv head's n_rep query heads are n_rep queries against it.
    const auto qg = q.reshape({B, n_kv_heads_local, n_rep, head_dim});  // (B, n_kv, n_rep, hd)
    const int64_t P = rows->prefix;
    // Scaled once here, not per chunk.
    const auto qa = qg * (1.0 / std::sqrt(static_cast<double>(head_dim)));
    std::vector<at::Tensor> outs;
    for (const auto& c : rows->chunks) {
      CG_CHECK(P + c.span <= k_cache->size(2), "KV cache holds {} positions but the step needs {}; make the cache "
               "longer (max_len)", k_cache->size(2), P + c.span);
      const auto qc = qa.narrow(0, c.start, c.rows);                                 // (n, n_kv, n_rep, hd)
      const auto kc = k_cache->narrow(0, c.start, c.rows).narrow(2, P, c.span);      // (n, n_kv, span, hd)
      const auto vc = v_cache->narrow(0, c.start, c.rows).narrow(2, P, c.span);
      outs.push_back(P == 0 ? rows_decode_attention(qc, kc, vc, c.mask)
                            : prefix_decode_attention(qc, kc, vc, rows->prefix_k, rows->prefix_v, c.mask));
    }
    const auto og = outs.size() == 1 ? outs[0] : at::cat(outs, 0);
    return o_proj(og.reshape({B, 1, n_heads_local * head_dim}));
  }
  if (!cached) CG_CHECK(start_pos == 0, "start_pos {} needs a KV cache holding the earlier positions", start_pos);
  // Training / prefill on CPU: block-causal attention (skips the scores right of the diagonal blocks). GPUs keep the
  // fused SDPA (flash attention on torch 2.x).
  if (!cached && x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble))
    return o_proj(causal_attention(q, k, v).reshape({B, T, n_heads_local * head_dim}));

  int64_t S = T;  // key positions seen
  if (cached) {
    CG_CHECK(start_pos + T <= k_cache->size(2), "KV cache holds {} positions but the step needs {}; make the cache "
             "longer (max_len)", k_cache->size(2), start_pos + T);
    CG_CHECK(k_cache->size(0) == B, "KV cache batch {} != input batch {}", k_cache->size(0), B);
    k_cache->narrow(2, start_pos, T).copy_(k);
    v_cache->narrow(2, start_pos, T).copy_(v);
    S = start_pos + T;
    k = k_cache->narrow(2, 0, S);  // (B, n_kv_local, S, hd)
    v = v_cache->narrow(2, 0, S);
  }
  // GQA: query head h uses kv head h / n_rep (HF repeat_kv: each kv head repeated n_rep times in a row).
  if (T == 1 && n_rep > 1) {
    // Decode: the n_rep query heads of a kv head are all at the newest position and see every cached key, so they
    // are n_rep "queries" of one attention against that kv head: no repeated copy of the cache (which would move
    // n_rep times the cache through memory every step).
    const auto qg = q.reshape({B, n_kv_heads_local, n_rep, head_dim});             // (B, n_kv, n_rep, hd)
    const auto og = sdpa(qg, k, v, at::Tensor(), false);                            // (B, n_kv, n_rep, hd)
    return o_proj(og.reshape({B, 1, n_heads_local * head_dim}));
  }
  at::Tensor out;  // (B, n_heads_local, T, hd)
  if (T == 1) {
    out = sdpa_gqa(q, k, v, at::Tensor(), false);  // one query at the newest position sees every cached key
  } else if (S == T) {
    out = sdpa_gqa(q, k, v, at::Tensor(), true);
  } else {
    // Chunked prefill after earlier positions: query i (position start_pos + i) sees keys [0, start_pos + i].
    const auto opt = at::TensorOptions().dtype(at::kLong).device(x.device());
    const auto mask = at::arange(S, opt).unsqueeze(0) <= (at::arange(T, opt) + start_pos).unsqueeze(1);  // (T, S)
    out = sdpa_gqa(q, k, v, mask, false);
  }
  out = out.transpose(1, 2).reshape({B, T, n_heads_local * head_dim});  // (B, T, d_local)
  return o_proj(out);
}

void AttentionImpl::fuse_projections() {
  if (!fused())
    qkv_weight = fuse_linears({q_proj.get(), k_proj.get(), v_proj.get()}, "Attention::fuse_projections");
}

}  // namespace cg::model
