#include "model/rope.h"

#include <torch/torch.h>

namespace cg::model {

namespace {

// pos (N) fp32 -> cos, sin (N, head_dim).
std::pair<at::Tensor, at::Tensor> cos_sin_of(const at::Tensor& pos, int64_t head_dim, double theta,
                                             at::ScalarType dtype) {
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(pos.device());
  // inv_freq (head_dim / 2): 1 / theta^(2i / head_dim), the exponent in fp32 like HF's arange(0, d, 2).float() / d.
  const auto inv_freq = 1.0 / at::pow(theta, at::arange(0, head_dim, 2, f32) / static_cast<double>(head_dim));
  const auto freqs = at::outer(pos, inv_freq);   // (N, head_dim / 2)
  const auto emb = at::cat({freqs, freqs}, -1);  // (N, head_dim)
  const auto sin_half = freqs.sin();
  return {emb.cos().to(dtype), at::cat({-sin_half, sin_half}, -1).to(dtype)};
}

}  // namespace

std::pair<at::Tensor, at::Tensor> rope_cos_sin(int64_t start_pos, int64_t T, int64_t head_dim, double theta,
                                               at::ScalarType dtype, at::Device device) {
  return cos_sin_of(at::arange(start_pos, start_pos + T, at::TensorOptions().dtype(at::kFloat).device(device)),
                    head_dim, theta, dtype);
}

std::pair<at::Tensor, at::Tensor> rope_cos_sin_at(const at::Tensor& positions, int64_t head_dim, double theta,
                                                  at::ScalarType dtype) {
  return cos_sin_of(positions.to(at::kFloat), head_dim, theta, dtype);
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  return at::addcmul(x * cos, x.roll(x.size(-1) / 2, -1), sin);
}

}  // namespace cg::model
