#include "model/decode_attention.h"

#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <set>
#include <tuple>
#include <vector>

#include "common/error.h"
#include "model/rope.h"

#ifdef CG_HAVE_CUDA_KERNELS
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "model/decode_attention_cuda.h"
#endif

namespace cg::model {

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

at::Tensor one_pass_decode_attention(const at::Tensor& qkv, const at::Tensor& cos, const at::Tensor& sin,
                                     const at::Tensor& pos, const at::Tensor& k_cache, const at::Tensor& v_cache,
                                     const at::Tensor& prefix_k, const at::Tensor& prefix_v, int64_t Hq,
                                     int64_t Hkv) {
#ifdef CG_HAVE_CUDA_KERNELS
  if (qkv.is_cuda()) {
    const auto [B, hd, P, max_len] = check_shapes(qkv, cos, sin, pos, k_cache, v_cache, prefix_k, prefix_v, Hq, Hkv);
    const auto dt = qkv.scalar_type();
    CG_CHECK(dt == at::kFloat || dt == at::kBFloat16 || dt == at::kHalf,
             "one-pass decode attention kernels take fp32, bf16 or fp16, not {}", c10::str(dt));
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
    a.dtype = dt == at::kFloat ? cuda::DecodeDType::Float
              : dt == at::kBFloat16 ? cuda::DecodeDType::BFloat16
                                    : cuda::DecodeDType::Half;
    a.B = B, a.Hq = Hq, a.Hkv = Hkv, a.hd = hd, a.P = P, a.max_len = max_len;
    a.qkv = x.data_ptr(), a.qkv_row = x.stride(0);
    a.cos = c.data_ptr(), a.sin = s.data_ptr(), a.pos = p.data_ptr<int64_t>();
    a.k_cache = k_cache.data_ptr(), a.v_cache = v_cache.data_ptr();
    a.cache_b = k_cache.stride(0), a.cache_h = k_cache.stride(1);
    a.prefix_k = P > 0 ? pk.data_ptr() : nullptr, a.prefix_v = P > 0 ? pv.data_ptr() : nullptr;
    a.out = out.data_ptr();
    a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
    const c10::cuda::CUDAGuard guard(qkv.device());
    void* stream = c10::cuda::getCurrentCUDAStream(qkv.device().index()).stream();
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
#endif
  return one_pass_decode_attention_reference(qkv, cos, sin, pos, k_cache, v_cache, prefix_k, prefix_v, Hq, Hkv);
}

double decode_kernels_max_error(at::ScalarType dtype, at::Device device, int64_t Hq, int64_t Hkv, int64_t hd,
                                int64_t P, uint64_t seed) {
  at::NoGradGuard no_grad;
  const std::vector<int64_t> steps{0, 1, 17, 39, 5, 64, 2};  // positions past the prefix: assorted, the last one too
  const int64_t B = static_cast<int64_t>(steps.size()), max_len = P + 65;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const auto to = at::TensorOptions().dtype(dtype).device(device);
  const auto randn = [&](at::IntArrayRef shape) { return at::randn(shape, gen, f32).to(to); };
  std::vector<int64_t> positions;
  for (const int64_t s : steps) positions.push_back(P + s);
  const auto pos = at::tensor(positions, at::TensorOptions().dtype(at::kLong)).to(device);
  const auto [cos, sin] = rope_cos_sin_at(pos, hd, 10000.0, dtype);
  const auto qkv = randn({B, Hq + 2 * Hkv, hd});
  const auto kv_a = randn({2, B, Hkv, max_len, hd}), kv_b = kv_a.clone();  // make_cache's layout
  at::Tensor pk, pv;
  if (P > 0) pk = randn({1, Hkv, P, hd}), pv = randn({1, Hkv, P, hd});
  const auto got = one_pass_decode_attention(qkv, cos, sin, pos, kv_a[0], kv_a[1], pk, pv, Hq, Hkv);
  const auto want = one_pass_decode_attention_reference(qkv, cos, sin, pos, kv_b[0], kv_b[1], pk, pv, Hq, Hkv);
  const auto diff = [](const at::Tensor& x, const at::Tensor& y) {
    return (x.to(at::kFloat) - y.to(at::kFloat)).abs().nan_to_num(1e30).max().item<double>();
  };
  const double scale = std::max({1e-6, want.to(at::kFloat).abs().max().item<double>(),
                                 kv_b.to(at::kFloat).abs().max().item<double>()});
  return std::max(diff(got, want), diff(kv_a, kv_b)) / scale;
}

void decode_kernels_check_once(at::ScalarType dtype, at::Device device, int64_t Hq, int64_t Hkv, int64_t hd) {
  if (!device.is_cuda() || !decode_kernels_built()) return;  // off a GPU the reference itself runs
  static std::mutex mu;
  static std::set<std::tuple<int, int, int64_t, int64_t, int64_t>> checked;
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_tuple(static_cast<int>(dtype), static_cast<int>(device.index()), Hq, Hkv, hd);
  if (checked.count(key)) return;
  // Both round their outputs once from fp32: a unit in the last place apart at most.
  const double tol = dtype == at::kFloat ? 1e-4 : dtype == at::kHalf ? 2e-3 : 1.6e-2;
  for (const int64_t P : {int64_t(0), int64_t(7)}) {
    const double err = decode_kernels_max_error(dtype, device, Hq, Hkv, hd, P);
    CG_CHECK(err <= tol, "cgtrain's decode attention kernels differ from their reference by {:.3g} (relative; "
             "allowed {:.3g}) for {} heads, {} kv heads, head_dim {}, {}, prefix {}: set sample.decode_attention=ops "
             "(libtorch's ops) and report this", err, tol, Hq, Hkv, hd, c10::str(dtype), P);
  }
  checked.insert(key);
}

}  // namespace cg::model
