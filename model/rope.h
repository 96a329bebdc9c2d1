// Rotary position embeddings in HF LLaMA's half-split layout: rotate_half(x) = cat(-x[d/2:], x[:d/2]).
#pragma once
#include <ATen/core/Tensor.h>

#include <utility>

namespace cg::model {

// cos, sin for positions [start_pos, start_pos + T): each (T, head_dim) in `dtype` on `device`,
// computed in fp32 as HF does (inv_freq_i = theta^(-2i/head_dim), angles repeated over both halves). The first half
// of `sin` comes negated (what rotate_half's minus sign multiplies), as apply_rope expects.
std::pair<at::Tensor, at::Tensor> rope_cos_sin(int64_t start_pos, int64_t T, int64_t head_dim, double theta,
                                               at::ScalarType dtype, at::Device device);

// cos, sin for one position per row: positions (B) int64 -> each (B, head_dim), the same values rope_cos_sin gives
// for those positions.
std::pair<at::Tensor, at::Tensor> rope_cos_sin_at(const at::Tensor& positions, int64_t head_dim, double theta,
                                                  at::ScalarType dtype);

// x (B, n_heads, T, head_dim) -> x * cos + rotate_half(x) * sin (HF's), computed as x * cos + roll(x) * sin_signed:
// roll(x) = cat(x[d/2:], x[:d/2]) and sin_signed from rope_cos_sin, three kernels instead of five (a decode step
// applies it twice per layer). cos/sin (T, head_dim) or anything broadcasting to x.
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// The same rotation on x laid out (B, T, H, head_dim), as the projections produce it (training, prefill): cos/sin
// (T, head_dim) from rope_cos_sin, or anything broadcasting to x, e.g. (B, 1, 1, head_dim). On a GPU, with tables
// (T, head_dim) of x's dtype, one CUDA kernel forward and one backward (model/rope_cuda.cu, when the build has it:
// CG_HAVE_CUDA_KERNELS): one read and one write of x each way, where apply_rope's ops make ~7 passes on a transposed
// view. Elsewhere apply_rope on contiguous x. Differentiable either way.
at::Tensor apply_rope_bthd(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace cg::model
