#include "model/rope.h"

#include <torch/torch.h>

#ifdef CG_HAVE_CUDA_KERNELS
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "model/rope_cuda.h"
#endif

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

#ifdef CG_HAVE_CUDA_KERNELS
namespace {

// What model/rope_cuda.cu takes: x (B, T, H, hd) on a GPU, tables (T, hd) of x's dtype on x's device.
bool kernel_fits(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const auto dt = x.scalar_type();
  return x.is_cuda() && x.dim() == 4 && x.size(3) % 2 == 0 && cos.dim() == 2 && cos.size(0) == x.size(1) &&
         cos.size(1) == x.size(3) && sin.sizes() == cos.sizes() && cos.device() == x.device() &&
         sin.device() == x.device() && cos.scalar_type() == dt && sin.scalar_type() == dt &&
         (dt == at::kFloat || dt == at::kBFloat16 || dt == at::kHalf);
}

at::Tensor rope_kernel(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, float sign) {
  const auto xc = x.contiguous(), c = cos.contiguous(), s = sin.contiguous();
  auto out = at::empty(xc.sizes(), xc.options());  // (B, T, H, hd), contiguous
  const c10::cuda::CUDAGuard guard(xc.device());
  const auto dt = xc.scalar_type() == at::kFloat      ? cuda::RopeDType::Float
                  : xc.scalar_type() == at::kBFloat16 ? cuda::RopeDType::BFloat16
                                                      : cuda::RopeDType::Half;
  const int64_t B = xc.size(0), T = xc.size(1), H = xc.size(2), hd = xc.size(3);
  const char* err = cuda::rope_bthd(dt, xc.data_ptr(), c.data_ptr(), s.data_ptr(), out.data_ptr(), B * T * H, T, H,
                                    hd, sign, c10::cuda::getCurrentCUDAStream(xc.device().index()).stream());
  TORCH_CHECK(err == nullptr, "RoPE CUDA kernel: ", err);
  return out;
}

// forward: out = rope(x);  backward: dx = rope(dy) with the sine negated (the rotation's transpose). cos/sin are
// constants (no gradient).
struct RopeFunction : torch::autograd::Function<RopeFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    return rope_kernel(x, cos, sin, 1.0f);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    return {rope_kernel(grads[0], saved[0], saved[1], -1.0f), at::Tensor(), at::Tensor()};
  }
};

}  // namespace
#endif

at::Tensor apply_rope_bthd(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  TORCH_CHECK(x.dim() == 4, "apply_rope_bthd: x (B, T, H, head_dim) expected, got ", x.sizes());
#ifdef CG_HAVE_CUDA_KERNELS
  if (kernel_fits(x, cos, sin)) return RopeFunction::apply(x, cos, sin);
#endif
  if (cos.dim() == 2) return apply_rope(x, cos.unsqueeze(1), sin.unsqueeze(1));  // (T, 1, hd) over the heads
  return apply_rope(x, cos, sin);
}

}  // namespace cg::model
