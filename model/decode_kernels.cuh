// cgtrain's decoding kernels (model/decode_kernels_cuda.h has the contracts), in a header of their own
// so that tests/model/test_decode_kernels_emulated.cpp can run them on a CPU: the includer provides to_float(T) and
// store(float, T&) for the element types, and CUDA's builtins (threadIdx, __shfl_xor_sync, __syncthreads, __expf,
// __int_as_float, sqrtf), then includes this inside namespace cg::model::cuda.
#pragma once

// One thread per (row, kv head, d < hd / 2): the rotated pair (d, d + hd / 2) of the key and the same of the value.
template <typename T>
__global__ void write_kv_kernel(DecodeAttentionArgs a) {
  const int64_t half = a.hd / 2;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.B * a.Hkv * half) return;
  const int64_t b = i / (a.Hkv * half), rest = i - b * a.Hkv * half, head = rest / half, d = rest - head * half;
  const int64_t t = a.pos[b];
  if (t < a.P || t >= a.max_len) return;  // decode_attention writes NaN for this row
  const T* row = static_cast<const T*>(a.qkv) + b * a.qkv_row;
  const T* k = row + (a.Hq + head) * a.hd;
  const T* v = row + (a.Hq + a.Hkv + head) * a.hd;
  const T* cs = static_cast<const T*>(a.cos) + b * a.hd;
  const T* sn = static_cast<const T*>(a.sin) + b * a.hd;
  const float xa = to_float(k[d]), xb = to_float(k[d + half]);
  const int64_t at = b * a.cache_b + head * a.cache_h + t * a.hd;
  T* kc = static_cast<T*>(a.k_cache) + at;
  T* vc = static_cast<T*>(a.v_cache) + at;
  store(xa * to_float(cs[d]) + xb * to_float(sn[d]), kc[d]);
  store(xb * to_float(cs[d + half]) + xa * to_float(sn[d + half]), kc[d + half]);
  vc[d] = v[d];
  vc[d + half] = v[d + half];
}

constexpr int kWarps = 4;  // a block: one (row, query head), its keys dealt to 4 warps
constexpr int kGroup = 4;  // keys a warp has in flight at once (their loads issued before any reduction)

// Position t's vector of one kv head: the shared prefix below P, the row's cache from P on.
template <typename T>
__device__ __forceinline__ const T* key_at(const T* prefix, const T* own, int64_t P, int64_t hd, int64_t t) {
  return t < P ? prefix + t * hd : own + t * hd;
}

// Block (b, h): lane holds d = lane + 32 j (j < J) of q and of the running output. Each warp runs an online softmax
// over its keys (t = warp * kGroup + g + k * kWarps * kGroup), the scores summed across the warp's lanes; the warps'
// (max, sum, output) are merged at the end through shared memory.
template <typename T, int J>
__global__ void __launch_bounds__(kWarps * 32) attention_kernel(DecodeAttentionArgs a) {
  const int64_t b = blockIdx.x, hq = blockIdx.y;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t hd = a.hd, half = hd / 2, kvh = hq / (a.Hq / a.Hkv);
  const int64_t last = a.pos[b];
  T* out = static_cast<T*>(a.out) + (b * a.Hq + hq) * hd;
  if (last < a.P || last >= a.max_len) {  // the caller checked positions on the host where it could: make it loud
    for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) store(__int_as_float(0x7fc00000), out[d]);
    return;
  }
  const T* qrow = static_cast<const T*>(a.qkv) + b * a.qkv_row + hq * hd;
  const T* cs = static_cast<const T*>(a.cos) + b * hd;
  const T* sn = static_cast<const T*>(a.sin) + b * hd;
  float q[J];
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int64_t d = lane + 32 * j, p = d < half ? d + half : d - half;
    q[j] = d < hd ? (to_float(qrow[d]) * to_float(cs[d]) + to_float(qrow[p]) * to_float(sn[d])) * a.scale : 0.f;
  }
  const T* pk = static_cast<const T*>(a.prefix_k) + kvh * a.P * hd;  // unused when P == 0
  const T* pv = static_cast<const T*>(a.prefix_v) + kvh * a.P * hd;
  const T* ck = static_cast<const T*>(a.k_cache) + b * a.cache_b + kvh * a.cache_h;
  const T* cv = static_cast<const T*>(a.v_cache) + b * a.cache_b + kvh * a.cache_h;

  const int64_t n_keys = last + 1;
  float m = -INFINITY, l = 0.f, acc[J];
#pragma unroll
  for (int j = 0; j < J; ++j) acc[j] = 0.f;
  for (int64_t t0 = warp * kGroup; t0 < n_keys; t0 += kWarps * kGroup) {  // uniform across the warp
    float s[kGroup], vals[kGroup][J];
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
      const int64_t t = t0 + g;
      float dot = 0.f;
#pragma unroll
      for (int j = 0; j < J; ++j) vals[g][j] = 0.f;
      if (t < n_keys) {
        const T* k = key_at(pk, ck, a.P, hd, t);
        const T* v = key_at(pv, cv, a.P, hd, t);
#pragma unroll
        for (int j = 0; j < J; ++j) {
          const int64_t d = lane + 32 * j;
          if (d < hd) {
            dot += q[j] * to_float(k[d]);
            vals[g][j] = to_float(v[d]);
          }
        }
      }
      s[g] = dot;
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
#pragma unroll
      for (int g = 0; g < kGroup; ++g) s[g] += __shfl_xor_sync(0xffffffffu, s[g], off);  // every lane: the sum
    }
    float m_new = m;
#pragma unroll
    for (int g = 0; g < kGroup; ++g)
      if (t0 + g < n_keys) m_new = fmaxf(m_new, s[g]);
    const float corr = __expf(m - m_new);  // 0 on the first group (m = -inf)
    l *= corr;
#pragma unroll
    for (int j = 0; j < J; ++j) acc[j] *= corr;
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
      if (t0 + g >= n_keys) continue;
      const float p = __expf(s[g] - m_new);
      l += p;
#pragma unroll
      for (int j = 0; j < J; ++j) acc[j] += p * vals[g][j];
    }
    m = m_new;
  }

  __shared__ float warp_m[kWarps], warp_l[kWarps];
  __shared__ float warp_acc[kWarps][J * 32];
  if (lane == 0) warp_m[warp] = m, warp_l[warp] = l;
#pragma unroll
  for (int j = 0; j < J; ++j) warp_acc[warp][lane + 32 * j] = acc[j];
  __syncthreads();
  float M = -INFINITY;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) M = fmaxf(M, warp_m[w]);  // finite: warp 0 holds key 0
  float f[kWarps], L = 0.f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    f[w] = warp_m[w] == -INFINITY ? 0.f : __expf(warp_m[w] - M);  // a warp without keys adds nothing
    L += warp_l[w] * f[w];
  }
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float o = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) o += warp_acc[w][d] * f[w];
    store(o / L, out[d]);
  }
}

// One block per row of d: s = x + r rounded to T (the residual stream's value; r may be null), written to sum when
// given, then out = w * s / sqrt(mean(s^2) + eps) computed in fp32 and rounded once. kNormThreads threads.
constexpr int kNormThreads = 256;
template <typename T>
__global__ void __launch_bounds__(kNormThreads) add_rms_norm_kernel(const T* x, const T* r, const T* w, T* sum,
                                                                     T* out, int64_t d, float eps) {
  const int64_t row = blockIdx.x;
  const T* xr = x + row * d;
  const T* rr = r ? r + row * d : nullptr;
  const auto rounded = [&](int64_t i) {  // x + r as the residual stream holds it
    T s;
    store(to_float(xr[i]) + (rr ? to_float(rr[i]) : 0.f), s);
    return s;
  };
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const T s = rounded(i);
    if (sum) sum[row * d + i] = s;
    const float v = to_float(s);
    ss += v * v;
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
  __shared__ float part[kNormThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) part[warp] = ss;
  __syncthreads();
  float total = 0.f;
  for (int i = 0; i < static_cast<int>(blockDim.x / 32); ++i) total += part[i];
  const float rstd = 1.f / sqrtf(total / static_cast<float>(d) + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
    store(to_float(w[i]) * (to_float(rounded(i)) * rstd), out[row * d + i]);
}

// SwiGLU's product: out[row, j] = silu(gu[row, j]) * gu[row, f + j] in fp32, rounded once; gu's rows gu_row apart.
template <typename T>
__global__ void silu_mul_kernel(const T* gu, int64_t gu_row, T* out, int64_t rows, int64_t f) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * f) return;
  const int64_t row = i / f, j = i - row * f;
  const float g = to_float(gu[row * gu_row + j]), u = to_float(gu[row * gu_row + f + j]);
  store(g / (1.f + __expf(-g)) * u, out[i]);
}
