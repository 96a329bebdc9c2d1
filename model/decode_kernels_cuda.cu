// cgtrain's decoding kernels (model/decode_kernels_cuda.h has the contracts): the one-pass attention as two kernels
// per layer, the residual add with RMSNorm as one, SiLU x up as one.
// libtorch's ops take ~14 kernels a layer for the same work (RoPE by mul/roll/addcmul over per-head tables, the cache
// scatter, the scaling, the shared prefix's and the rows' own scores, a mask, cat, softmax, two value products and a
// sum), each one a host-side operator call: a 7B decode step at batch 256 spent ~26 ms issuing ~800 of them against
// ~9 ms of GPU work (docs/performance.md, GPU). These read each row's keys up to its own position only, where the
// chunked ops read a chunk's longest span for every row of it.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "model/cuda_convert.cuh"
#include "model/decode_kernels_cuda.h"

namespace cg::model::cuda {
namespace {

#include "model/decode_kernels.cuh"

const char* check(const DecodeAttentionArgs& a) {
  if (a.B <= 0 || a.B > 2147483647 || a.Hq <= 0 || a.Hq > 65535 || a.Hkv <= 0 || a.Hq % a.Hkv != 0)
    return "decode attention: needs B >= 1, 1 <= Hq <= 65535 and Hkv dividing Hq";
  if (a.hd < 2 || a.hd > 256 || a.hd % 2 != 0) return "decode attention: head_dim must be even and at most 256";
  if (!a.qkv || !a.cos || !a.sin || !a.pos || !a.k_cache || !a.v_cache || !a.out || (a.P > 0 && (!a.prefix_k ||
      !a.prefix_v)))
    return "decode attention: a tensor is missing";
  return nullptr;
}

const char* launched() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

template <typename T>
const char* launch_write(const DecodeAttentionArgs& a, cudaStream_t stream) {
  constexpr int kBlock = 256;
  const int64_t n = a.B * a.Hkv * (a.hd / 2);
  write_kv_kernel<T><<<static_cast<unsigned>((n + kBlock - 1) / kBlock), kBlock, 0, stream>>>(a);
  return launched();
}

template <typename T>
const char* launch_attention(const DecodeAttentionArgs& a, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(a.B), static_cast<unsigned>(a.Hq));
  const int lanes_per_dim = static_cast<int>((a.hd + 31) / 32);
  if (lanes_per_dim <= 1)
    attention_kernel<T, 1><<<grid, kWarps * 32, 0, stream>>>(a);
  else if (lanes_per_dim <= 2)
    attention_kernel<T, 2><<<grid, kWarps * 32, 0, stream>>>(a);
  else if (lanes_per_dim <= 4)
    attention_kernel<T, 4><<<grid, kWarps * 32, 0, stream>>>(a);
  else
    attention_kernel<T, 8><<<grid, kWarps * 32, 0, stream>>>(a);
  return launched();
}

template <typename T>
const char* launch_norm(const void* x, const void* r, const void* w, void* sum, void* out, int64_t rows, int64_t d,
                        float eps, cudaStream_t stream) {
  add_rms_norm_kernel<T><<<static_cast<unsigned>(rows), kNormThreads, 0, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(r), static_cast<const T*>(w), static_cast<T*>(sum),
      static_cast<T*>(out), d, eps);
  return launched();
}

template <typename T>
const char* launch_silu(const void* gu, int64_t gu_row, void* out, int64_t rows, int64_t f, cudaStream_t stream) {
  constexpr int kBlock = 256;
  const int64_t n = rows * f;
  silu_mul_kernel<T><<<static_cast<unsigned>((n + kBlock - 1) / kBlock), kBlock, 0, stream>>>(
      static_cast<const T*>(gu), gu_row, static_cast<T*>(out), rows, f);
  return launched();
}

// f(T{}) for the element type T of dt: the launchers' one switch.
template <typename F>
const char* by_dtype(DecodeDType dt, F&& f) {
  switch (dt) {
    case DecodeDType::Float: return f(float{});
    case DecodeDType::BFloat16: return f(__nv_bfloat16{});
    case DecodeDType::Half: return f(__half{});
  }
  return "cgtrain's CUDA kernels: unknown dtype";
}

}  // namespace

const char* add_rms_norm(DecodeDType dtype, const void* x, const void* r, const void* w, void* sum, void* out,
                         int64_t rows, int64_t d, float eps, void* stream) {
  if (rows <= 0 || rows > 2147483647 || d <= 0 || !x || !w || !out) return "add_rms_norm: needs rows, d and tensors";
  const auto s = static_cast<cudaStream_t>(stream);
  return by_dtype(dtype, [&](auto t) { return launch_norm<decltype(t)>(x, r, w, sum, out, rows, d, eps, s); });
}

const char* silu_mul(DecodeDType dtype, const void* gu, int64_t gu_row, void* out, int64_t rows, int64_t f,
                     void* stream) {
  if (rows <= 0 || f <= 0 || !gu || !out) return "silu_mul: needs rows, f and tensors";
  if ((rows * f + 255) / 256 > 2147483647) return "silu_mul: too many elements for one launch";
  const auto s = static_cast<cudaStream_t>(stream);
  return by_dtype(dtype, [&](auto t) { return launch_silu<decltype(t)>(gu, gu_row, out, rows, f, s); });
}

const char* decode_write_kv(const DecodeAttentionArgs& a, void* stream) {
  if (const char* bad = check(a)) return bad;
  const auto s = static_cast<cudaStream_t>(stream);
  return by_dtype(a.dtype, [&](auto t) { return launch_write<decltype(t)>(a, s); });
}

const char* decode_attention(const DecodeAttentionArgs& a, void* stream) {
  if (const char* bad = check(a)) return bad;
  const auto s = static_cast<cudaStream_t>(stream);
  return by_dtype(a.dtype, [&](auto t) { return launch_attention<decltype(t)>(a, s); });
}

}  // namespace cg::model::cuda
