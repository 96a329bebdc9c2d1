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

}  // namespace cg::model
