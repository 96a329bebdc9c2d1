// RoPE as one CUDA kernel (forward and backward): model/rope_cuda.h has the contract.
// libtorch's ops need ~7 passes over q or k for RoPE's forward and as many for its backward (x * cos, roll, addcmul on
// a transposed view; a 7B LoRA step spent ~35 ms of ~235 in them on an H200): this reads x once and writes once.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "model/cuda_convert.cuh"
#include "model/rope_cuda.h"

namespace cg::model::cuda {
namespace {

template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

// One thread: V consecutive d of the first half of one row and the V matching d + h.
template <typename T, int V>
__global__ void rope_kernel(const T* __restrict__ x, const T* __restrict__ cos, const T* __restrict__ sin,
                            T* __restrict__ out, int64_t rows, int64_t T_len, int64_t H, int64_t hd, float sign) {
  const int64_t h = hd / 2, per_row = h / V;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * per_row) return;
  const int64_t r = i / per_row;
  const int64_t d = (i - r * per_row) * V;
  const int64_t t = (r / H) % T_len;
  using VT = Vec<T, V>;
  const VT a = *reinterpret_cast<const VT*>(x + r * hd + d);       // x[r, d .. d + V)
  const VT b = *reinterpret_cast<const VT*>(x + r * hd + h + d);   // x[r, h + d ..)
  const VT c1 = *reinterpret_cast<const VT*>(cos + t * hd + d);
  const VT c2 = *reinterpret_cast<const VT*>(cos + t * hd + h + d);
  const VT s1 = *reinterpret_cast<const VT*>(sin + t * hd + d);
  const VT s2 = *reinterpret_cast<const VT*>(sin + t * hd + h + d);
  VT o1, o2;
#pragma unroll
  for (int k = 0; k < V; ++k) {
    const float xa = to_float(a.v[k]), xb = to_float(b.v[k]);
    store(xa * to_float(c1.v[k]) + sign * xb * to_float(s1.v[k]), o1.v[k]);
    store(xb * to_float(c2.v[k]) + sign * xa * to_float(s2.v[k]), o2.v[k]);
  }
  *reinterpret_cast<VT*>(out + r * hd + d) = o1;
  *reinterpret_cast<VT*>(out + r * hd + h + d) = o2;
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename T>
const char* launch(const void* x, const void* cos, const void* sin, void* out, int64_t rows, int64_t T_len,
                   int64_t H, int64_t hd, float sign, cudaStream_t stream) {
  constexpr int kWide = 16 / sizeof(T);  // 16-byte loads and stores
  const int64_t h = hd / 2;
  const bool wide = h % kWide == 0 && aligned16(x) && aligned16(cos) && aligned16(sin) && aligned16(out);
  const int64_t threads_total = rows * (wide ? h / kWide : h);
  if (threads_total == 0) return nullptr;
  constexpr int kBlock = 256;
  const unsigned grid = static_cast<unsigned>((threads_total + kBlock - 1) / kBlock);
  const auto* xp = static_cast<const T*>(x);
  const auto* cp = static_cast<const T*>(cos);
  const auto* sp = static_cast<const T*>(sin);
  auto* op = static_cast<T*>(out);
  if (wide)
    rope_kernel<T, kWide><<<grid, kBlock, 0, stream>>>(xp, cp, sp, op, rows, T_len, H, hd, sign);
  else
    rope_kernel<T, 1><<<grid, kBlock, 0, stream>>>(xp, cp, sp, op, rows, T_len, H, hd, sign);
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace

const char* rope_bthd(RopeDType dtype, const void* x, const void* cos, const void* sin, void* out, int64_t rows,
                      int64_t T, int64_t H, int64_t hd, float sign, void* stream) {
  if (hd % 2 != 0 || T <= 0 || H <= 0) return "rope_bthd: head_dim must be even and T, H positive";
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case RopeDType::Float: return launch<float>(x, cos, sin, out, rows, T, H, hd, sign, s);
    case RopeDType::BFloat16: return launch<__nv_bfloat16>(x, cos, sin, out, rows, T, H, hd, sign, s);
    case RopeDType::Half: return launch<__half>(x, cos, sin, out, rows, T, H, hd, sign, s);
  }
  return "rope_bthd: unknown dtype";
}

}  // namespace cg::model::cuda
