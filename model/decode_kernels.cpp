#include "model/decode_kernels.h"

#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/error.h"
#include "model/rope.h"

#ifdef CG_HAVE_CUDA_KERNELS
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "model/decode_kernels_cuda.h"
#endif

namespace cg::model {

DecodeKernels decode_kernels_from(const std::string& name) {
  if (name == "auto") return DecodeKernels::Auto;
  if (name == "on") return DecodeKernels::On;
  if (name == "off") return DecodeKernels::Off;
  CG_FAIL("unknown sample.decode_kernels '{}': auto, on or off", name);
}

bool decode_kernels_built() {
#ifdef CG_HAVE_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

namespace {

struct Shape {
  int64_t B, hd, P, max_len;
};

Shape check_shapes(const at::Tensor& qkv, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& pos,
                   const at::Tensor& k_cache, const at::Tensor& v_cache, const at::Tensor& prefix_k,
                   const at::Tensor& prefix_v, int64_t Hq, int64_t Hkv) {
  CG_CHECK(qkv.dim() == 3 && Hq > 0 && Hkv > 0 && Hq % Hkv == 0 && qkv.size(1) == Hq + 2 * Hkv,
           "one-pass decode attention: qkv (B, Hq + 2 Hkv, hd) with Hkv dividing Hq expected, got {} for Hq {}, "
           "Hkv {}", c10::str(qkv.sizes()), Hq, Hkv);
  const int64_t B = qkv.size(0), hd = qkv.size(2);
  CG_CHECK(hd % 2 == 0 && cos.sizes() == at::IntArrayRef({B, hd}) && sin.sizes() == cos.sizes(),
           "one-pass decode attention: RoPE tables (B, hd) = ({}, {}) expected, got {} and {}", B, hd,
           c10::str(cos.sizes()), c10::str(sin.sizes()));
  CG_CHECK(pos.dim() == 1 && pos.size(0) == B && pos.scalar_type() == at::kLong,
           "one-pass decode attention: positions (B) int64 expected, got {} {}", c10::str(pos.sizes()),
           c10::str(pos.scalar_type()));
  CG_CHECK(k_cache.dim() == 4 && k_cache.size(0) == B && k_cache.size(1) == Hkv && k_cache.size(3) == hd &&
               v_cache.sizes() == k_cache.sizes(),
           "one-pass decode attention: caches (B, Hkv, max_len, hd) = ({}, {}, *, {}) expected, got {} and {}", B, Hkv,
           hd, c10::str(k_cache.sizes()), c10::str(v_cache.sizes()));
  const int64_t P = prefix_k.defined() ? prefix_k.size(2) : 0;
  if (prefix_k.defined())
    CG_CHECK(prefix_k.dim() == 4 && prefix_k.size(0) == 1 && prefix_k.size(1) == Hkv && prefix_k.size(3) == hd &&
                 prefix_v.defined() && prefix_v.sizes() == prefix_k.sizes(),
             "one-pass decode attention: prefix (1, Hkv, P, hd) = (1, {}, *, {}) expected, got {}", Hkv, hd,
             c10::str(prefix_k.sizes()));
  return {B, hd, P, k_cache.size(2)};
}

}  // namespace

at::Tensor one_pass_decode_attention_reference(const at::Tensor& qkv, const at::Tensor& cos, const at::Tensor& sin,
                                               const at::Tensor& pos, const at::Tensor& k_cache,
                                               const at::Tensor& v_cache, const at::Tensor& prefix_k,
                                               const at::Tensor& prefix_v, int64_t Hq, int64_t Hkv) {
  const auto [B, hd, P, max_len] = check_shapes(qkv, cos, sin, pos, k_cache, v_cache, prefix_k, prefix_v, Hq, Hkv);
  at::NoGradGuard no_grad;
  const auto host_pos = pos.to(at::kCPU).contiguous();
  const int64_t* p = host_pos.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    CG_CHECK(p[b] >= P && p[b] < max_len, "one-pass decode attention: row {} at position {} outside [{}, {}) (shared "
             "prefix, KV cache length)", b, p[b], P, max_len);
  // The kernels' two phases, under the same profiler scopes (bench/op_profile.h counts each as one kernel).
  const auto roped = [&](int64_t first, int64_t heads) {  // heads [first, first + heads) of qkv, RoPE'd in fp32
    return apply_rope(qkv.narrow(1, first, heads).to(at::kFloat), cos.to(at::kFloat).unsqueeze(1),
                      sin.to(at::kFloat).unsqueeze(1));
  };
  {
    RECORD_USER_SCOPE("cg::decode_write_kv");
    const auto k = roped(Hq, Hkv);  // (B, Hkv, hd)
    const auto v = qkv.narrow(1, Hq + Hkv, Hkv);
    for (int64_t b = 0; b < B; ++b) {
      k_cache[b].select(1, p[b]).copy_(k[b]);  // (Hkv, hd), rounded once to the cache's dtype
      v_cache[b].select(1, p[b]).copy_(v[b]);
    }
  }
  RECORD_USER_SCOPE("cg::decode_attention");
  const auto q = roped(0, Hq) * (1.0 / std::sqrt(static_cast<double>(hd)));  // (B, Hq, hd)
  std::vector<at::Tensor> outs;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t t = p[b];
    auto keys = k_cache[b].narrow(1, P, t - P + 1).to(at::kFloat);  // (Hkv, L, hd)
    auto values = v_cache[b].narrow(1, P, t - P + 1).to(at::kFloat);
    if (P > 0) {
      keys = at::cat({prefix_k[0].to(at::kFloat), keys}, 1);
      values = at::cat({prefix_v[0].to(at::kFloat), values}, 1);
    }
    const auto qg = q[b].view({Hkv, Hq / Hkv, hd});                         // a kv head's query heads
    const auto probs = at::softmax(at::bmm(qg, keys.transpose(1, 2)), -1);  // (Hkv, n_rep, L)
    outs.push_back(at::bmm(probs, values).reshape({Hq * hd}));
  }
  return at::stack(outs).to(qkv.scalar_type());
}

double kernel_tolerance(at::ScalarType dtype) {
  return dtype == at::kFloat ? 1e-4 : dtype == at::kHalf ? 2e-3 : 1.6e-2;
}

double kernel_relative_error(const std::vector<std::pair<at::Tensor, at::Tensor>>& pairs) {
  double diff = 0, scale = 1e-6;
  for (const auto& [got, want] : pairs) {
    const auto g = got.to(at::kFloat), w = want.to(at::kFloat);
    diff = std::max(diff, (g - w).abs().nan_to_num(1e30).max().item<double>());
    scale = std::max(scale, w.abs().max().item<double>());
  }
  return diff / scale;
}

namespace {

// Runs `measure` the first time this kernel meets this (dtype, device, dims) in the process (before the kernel's
// first use: never inside a CUDA graph capture, which always follows an eager step) and stops with what to set when
// the kernel is off. A set lookup on every later call (the key is formatted only for the error).
void check_once(const char* what, at::ScalarType dtype, at::Device device, std::array<int64_t, 3> dims,
                const std::function<double()>& measure) {
  using Key = std::tuple<const char*, int, int, std::array<int64_t, 3>>;
  static std::mutex mu;
  static std::set<Key> checked;
  const Key key{what, static_cast<int>(dtype), static_cast<int>(device.index()), dims};
  std::lock_guard<std::mutex> lock(mu);
  if (checked.count(key)) return;
  const double err = measure(), tol = kernel_tolerance(dtype);
  CG_CHECK(err <= tol, "cgtrain's CUDA kernel differs from its reference by {:.3g} (relative; allowed {:.3g}) for {} "
           "({}, {}, dims {}): set sample.decode_kernels=off (libtorch's operators) and report this", err, tol, what,
           c10::toString(dtype), device.str(), fmt::join(dims, ", "));
  checked.insert(key);
}

at::TensorOptions randn_options() { return at::TensorOptions().dtype(at::kFloat); }

#ifdef CG_HAVE_CUDA_KERNELS
cuda::DecodeDType kernel_dtype(at::ScalarType dt) {
  CG_CHECK(dt == at::kFloat || dt == at::kBFloat16 || dt == at::kHalf,
           "cgtrain's CUDA kernels take fp32, bf16 or fp16, not {}", c10::str(dt));
  return dt == at::kFloat ? cuda::DecodeDType::Float
         : dt == at::kBFloat16 ? cuda::DecodeDType::BFloat16
                               : cuda::DecodeDType::Half;
}

void* current_stream(const at::Tensor& x) { return c10::cuda::getCurrentCUDAStream(x.device().index()).stream(); }

at::Tensor attention_kernels(const at::Tensor& qkv, const at::Tensor& cos, const at::Tensor& sin,
                             const at::Tensor& pos, const at::Tensor& k_cache, const at::Tensor& v_cache,
                             const at::Tensor& prefix_k, const at::Tensor& prefix_v, int64_t Hq, int64_t Hkv) {
  const auto [B, hd, P, max_len] = check_shapes(qkv, cos, sin, pos, k_cache, v_cache, prefix_k, prefix_v, Hq, Hkv);
  const auto dt = qkv.scalar_type();
  for (const auto* t : {&cos, &sin, &k_cache, &v_cache, &prefix_k, &prefix_v})
    if (t->defined())
      CG_CHECK(t->scalar_type() == dt && t->device() == qkv.device(), "one-pass decode attention: every tensor "
               "in {} on {}, got {} on {}", c10::str(dt), qkv.device().str(), c10::str(t->scalar_type()),
               t->device().str());
  CG_CHECK(pos.device() == qkv.device(), "one-pass decode attention: positions on {}, not {}", qkv.device().str(),
           pos.device().str());
  CG_CHECK(k_cache.stride(3) == 1 && k_cache.stride(2) == hd && v_cache.strides() == k_cache.strides(),
           "one-pass decode attention kernels need caches whose (max_len, hd) are contiguous (make_cache's)");
  // Heads contiguous (the fused projection's view already is; anything else is copied).
  const auto x = qkv.stride(2) == 1 && qkv.stride(1) == hd ? qkv : qkv.contiguous();
  const auto c = cos.contiguous(), s = sin.contiguous(), p = pos.contiguous();
  const auto pk = prefix_k.defined() ? prefix_k.contiguous() : prefix_k;
  const auto pv = prefix_v.defined() ? prefix_v.contiguous() : prefix_v;
  auto out = at::empty({B, Hq * hd}, qkv.options());
  cuda::DecodeAttentionArgs a;
  a.dtype = kernel_dtype(dt);
  a.B = B, a.Hq = Hq, a.Hkv = Hkv, a.hd = hd, a.P = P, a.max_len = max_len;
  a.qkv = x.data_ptr(), a.qkv_row = x.stride(0);
  a.cos = c.data_ptr(), a.sin = s.data_ptr(), a.pos = p.data_ptr<int64_t>();
  a.k_cache = k_cache.data_ptr(), a.v_cache = v_cache.data_ptr();
  a.cache_b = k_cache.stride(0), a.cache_h = k_cache.stride(1);
  a.prefix_k = P > 0 ? pk.data_ptr() : nullptr, a.prefix_v = P > 0 ? pv.data_ptr() : nullptr;
  a.out = out.data_ptr();
  a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  const c10::cuda::CUDAGuard device_guard(qkv.device());
  void* stream = current_stream(qkv);
  {
    RECORD_USER_SCOPE("cg::decode_write_kv");
    const char* err = cuda::decode_write_kv(a, stream);
    CG_CHECK(err == nullptr, "decode attention kernel (cache write): {}", err);
  }
  RECORD_USER_SCOPE("cg::decode_attention");
  const char* err = cuda::decode_attention(a, stream);
  CG_CHECK(err == nullptr, "decode attention kernel: {}", err);
  return out;
}

at::Tensor norm_kernel(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight, double eps,
                       at::Tensor* sum) {
  const int64_t d = x.size(-1), rows = x.numel() / d;
  const auto xc = x.contiguous(), rc = residual.defined() ? residual.contiguous() : residual;
  const auto w = weight.contiguous();
  auto out = at::empty(xc.sizes(), xc.options());
  at::Tensor s;
  if (sum) s = at::empty(xc.sizes(), xc.options());
  const c10::cuda::CUDAGuard device_guard(x.device());
  RECORD_USER_SCOPE("cg::add_rms_norm");
  const char* err = cuda::add_rms_norm(kernel_dtype(x.scalar_type()), xc.data_ptr(),
                                       rc.defined() ? rc.data_ptr() : nullptr, w.data_ptr(),
                                       sum ? s.data_ptr() : nullptr, out.data_ptr(), rows, d, static_cast<float>(eps),
                                       current_stream(x));
  CG_CHECK(err == nullptr, "add + RMSNorm kernel: {}", err);
  if (sum) *sum = s;
  return out;
}

at::Tensor silu_kernel(const at::Tensor& gu) {
  const int64_t f = gu.size(-1) / 2, rows = gu.numel() / (2 * f);
  const auto g = gu.contiguous();  // (the fused projection's output already is)
  auto shape = g.sizes().vec();
  shape.back() = f;
  auto out = at::empty(shape, g.options());
  const c10::cuda::CUDAGuard device_guard(gu.device());
  RECORD_USER_SCOPE("cg::silu_mul");
  const char* err = cuda::silu_mul(kernel_dtype(g.scalar_type()), g.data_ptr(), 2 * f, out.data_ptr(), rows, f,
                                   current_stream(g));
  CG_CHECK(err == nullptr, "SiLU x up kernel: {}", err);
  return out;
}
#endif

}  // namespace

at::Tensor one_pass_decode_attention(const at::Tensor& qkv, const at::Tensor& cos, const at::Tensor& sin,
                                     const at::Tensor& pos, const at::Tensor& k_cache, const at::Tensor& v_cache,
                                     const at::Tensor& prefix_k, const at::Tensor& prefix_v, int64_t Hq,
                                     int64_t Hkv) {
#ifdef CG_HAVE_CUDA_KERNELS
  if (qkv.is_cuda()) {
    const int64_t hd = qkv.size(-1);
    check_once("one-pass decode attention (heads, kv heads, head_dim)", qkv.scalar_type(), qkv.device(),
               {Hq, Hkv, hd}, [&] {
                 return std::max(attention_kernel_error(qkv.scalar_type(), qkv.device(), Hq, Hkv, hd, 0),
                                 attention_kernel_error(qkv.scalar_type(), qkv.device(), Hq, Hkv, hd, 7));
               });
    return attention_kernels(qkv, cos, sin, pos, k_cache, v_cache, prefix_k, prefix_v, Hq, Hkv);
  }
#endif
  return one_pass_decode_attention_reference(qkv, cos, sin, pos, k_cache, v_cache, prefix_k, prefix_v, Hq, Hkv);
}

double attention_kernel_error(at::ScalarType dtype, at::Device device, int64_t Hq, int64_t Hkv, int64_t hd,
                              int64_t P, uint64_t seed) {
#ifdef CG_HAVE_CUDA_KERNELS
  at::NoGradGuard no_grad;
  const std::vector<int64_t> steps{0, 1, 17, 39, 5, 64, 2};  // positions past the prefix: assorted, the last one too
  const int64_t B = static_cast<int64_t>(steps.size()), max_len = P + 65;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto to = at::TensorOptions().dtype(dtype).device(device);
  const auto randn = [&](at::IntArrayRef shape) { return at::randn(shape, gen, randn_options()).to(to); };
  std::vector<int64_t> positions;
  for (const int64_t s : steps) positions.push_back(P + s);
  const auto pos = at::tensor(positions, at::TensorOptions().dtype(at::kLong)).to(device);
  const auto [cos, sin] = rope_cos_sin_at(pos, hd, 10000.0, dtype);
  const auto qkv = randn({B, Hq + 2 * Hkv, hd});
  const auto kv_a = randn({2, B, Hkv, max_len, hd}), kv_b = kv_a.clone();  // make_cache's layout
  at::Tensor pk, pv;
  if (P > 0) pk = randn({1, Hkv, P, hd}), pv = randn({1, Hkv, P, hd});
  const auto got = attention_kernels(qkv, cos, sin, pos, kv_a[0], kv_a[1], pk, pv, Hq, Hkv);
  const auto want = one_pass_decode_attention_reference(qkv, cos, sin, pos, kv_b[0], kv_b[1], pk, pv, Hq, Hkv);
  return kernel_relative_error({{got, want}, {kv_a, kv_b}});
#else
  (void)dtype, (void)device, (void)Hq, (void)Hkv, (void)hd, (void)P, (void)seed;
  CG_FAIL("attention_kernel_error: this build has no CUDA kernels");
#endif
}

bool inference_kernels_fit(const at::Tensor& x) {
  const auto dt = x.scalar_type();
  return decode_kernels_built() && x.is_cuda() && (dt == at::kFloat || dt == at::kBFloat16 || dt == at::kHalf) &&
         !(at::GradMode::is_enabled() && x.requires_grad());
}

at::Tensor add_rms_norm_reference(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight,
                                  double eps, at::Tensor* sum) {
  const auto s = residual.defined() ? (x.to(at::kFloat) + residual.to(at::kFloat)).to(x.scalar_type()) : x;
  if (sum) *sum = s;
  const auto sf = s.to(at::kFloat);
  const auto rstd = at::rsqrt(sf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return (weight.to(at::kFloat) * (sf * rstd)).to(x.scalar_type());
}

at::Tensor add_rms_norm(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight, double eps,
                        at::Tensor* sum) {
  CG_CHECK(x.dim() >= 1 && weight.dim() == 1 && weight.size(0) == x.size(-1) &&
               (!residual.defined() || residual.sizes() == x.sizes()),
           "add_rms_norm: x (..., d), residual like x and weight (d) expected, got {}, {} and {}",
           c10::str(x.sizes()), residual.defined() ? c10::str(residual.sizes()) : "none", c10::str(weight.sizes()));
#ifdef CG_HAVE_CUDA_KERNELS
  if (inference_kernels_fit(x)) {
    const int64_t d = x.size(-1);
    check_once("add + RMSNorm (d)", x.scalar_type(), x.device(), {d, 0, 0},
               [&] { return norm_kernel_error(x.scalar_type(), x.device(), d, eps); });
    return norm_kernel(x, residual, weight.to(x.scalar_type()), eps, sum);
  }
#endif
  RECORD_USER_SCOPE("cg::add_rms_norm");  // counted as the kernel it stands for (bench/op_profile.h)
  return add_rms_norm_reference(x, residual, weight, eps, sum);
}

double norm_kernel_error(at::ScalarType dtype, at::Device device, int64_t d, double eps, uint64_t seed) {
#ifdef CG_HAVE_CUDA_KERNELS
  at::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto to = at::TensorOptions().dtype(dtype).device(device);
  const auto x = at::randn({5, 1, d}, gen, randn_options()).to(to);
  const auto r = at::randn({5, 1, d}, gen, randn_options()).to(to);
  const auto w = (at::rand({d}, gen, randn_options()) + 0.5).to(to);
  at::Tensor s_got, s_want;
  const auto got = norm_kernel(x, r, w, eps, &s_got), want = add_rms_norm_reference(x, r, w, eps, &s_want);
  const auto alone = norm_kernel(x, {}, w, eps, nullptr), alone_want = add_rms_norm_reference(x, {}, w, eps, nullptr);
  return kernel_relative_error({{got, want}, {s_got, s_want}, {alone, alone_want}});
#else
  (void)dtype, (void)device, (void)d, (void)eps, (void)seed;
  CG_FAIL("norm_kernel_error: this build has no CUDA kernels");
#endif
}

at::Tensor silu_mul_reference(const at::Tensor& gu) {
  const int64_t f = gu.size(-1) / 2;
  const auto g = gu.narrow(-1, 0, f).to(at::kFloat), u = gu.narrow(-1, f, f).to(at::kFloat);
  return (at::silu(g) * u).to(gu.scalar_type());
}

at::Tensor silu_mul(const at::Tensor& gu) {
  CG_CHECK(gu.dim() >= 1 && gu.size(-1) % 2 == 0 && gu.size(-1) > 0, "silu_mul: gu (..., 2 f) expected, got {}",
           c10::str(gu.sizes()));
#ifdef CG_HAVE_CUDA_KERNELS
  if (inference_kernels_fit(gu)) {
    const int64_t f = gu.size(-1) / 2;
    check_once("SiLU x up (f)", gu.scalar_type(), gu.device(), {f, 0, 0},
               [&] { return silu_kernel_error(gu.scalar_type(), gu.device(), f); });
    return silu_kernel(gu);
  }
#endif
  RECORD_USER_SCOPE("cg::silu_mul");
  return silu_mul_reference(gu);
}

double silu_kernel_error(at::ScalarType dtype, at::Device device, int64_t f, uint64_t seed) {
#ifdef CG_HAVE_CUDA_KERNELS
  at::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto gu = (at::randn({3, 2, 2 * f}, gen, randn_options()) * 3).to(at::TensorOptions().dtype(dtype).device(
      device));
  return kernel_relative_error({{silu_kernel(gu), silu_mul_reference(gu)}});
#else
  (void)dtype, (void)device, (void)f, (void)seed;
  CG_FAIL("silu_kernel_error: this build has no CUDA kernels");
#endif
}

}  // namespace cg::model
