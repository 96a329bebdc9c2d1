// cgtrain's decoding kernels (model/decode_kernels_cuda.cu): the one-pass attention, add + RMSNorm, SiLU x up.
// Plain pointers, no torch; compiled when the build has a CUDA libtorch and nvcc (CG_HAVE_CUDA_KERNELS).
// model/decode_kernels.cpp wraps them.
#pragma once
#include <cstdint>

namespace cg::model::cuda {

enum class DecodeDType { Float = 0, BFloat16 = 1, Half = 2 };

// One decode step of one layer for B rows (one new token each), all pointers on one GPU, all in `dtype` but pos.
// Legend: Hq query heads, Hkv key/value heads (Hq % Hkv == 0, query head h reads kv head h / (Hq / Hkv)), hd head_dim
// (even, <= 256), P shared prefix positions, t a position.
struct DecodeAttentionArgs {
  DecodeDType dtype = DecodeDType::Float;
  int64_t B = 0, Hq = 0, Hkv = 0, hd = 0, P = 0, max_len = 0;
  const void* qkv = nullptr;  // the fused projection: row b, head j (q heads, then k, then v) at qkv + b*qkv_row + j*hd
  int64_t qkv_row = 0;
  const void* cos = nullptr;  // (B, hd) contiguous, row b's RoPE table at pos[b]; sin's first half negated (rope.h)
  const void* sin = nullptr;
  const int64_t* pos = nullptr;  // (B): row b's position, P <= pos[b] < max_len
  // Cache element (b, kv head, t, d) at cache + b*cache_b + head*cache_h + t*hd + d, for k and v alike.
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  int64_t cache_b = 0, cache_h = 0;
  // Shared prefix (kv head, t, d) at prefix + head*P*hd + t*hd + d, t < P; null when P == 0.
  const void* prefix_k = nullptr;
  const void* prefix_v = nullptr;
  void* out = nullptr;  // (B, Hq * hd) contiguous
  float scale = 1.f;    // 1 / sqrt(hd)
};

// Writes row b's key (RoPE at pos[b]) and value into the cache at position pos[b]: k, v rounded once from fp32.
// Returns nullptr, or the CUDA error's text when the launch failed.
const char* decode_write_kv(const DecodeAttentionArgs& a, void* stream);

// For every row b and query head h: q = RoPE(qkv's head h) * scale, attention over keys t in [0, pos[b]] (t < P from
// the prefix, else row b's cache), softmax and the sum of values in fp32 (online, one pass over the keys), out
// rounded once. Runs after decode_write_kv (key pos[b] is the row's own). A position outside [P, max_len) gives NaN.
const char* decode_attention(const DecodeAttentionArgs& a, void* stream);

// RMSNorm after the residual add, for inference: rows of d, x and r (null: none) -> sum = x + r rounded to dtype
// (null: not written), out = w * sum / sqrt(mean(sum^2) + eps) in fp32, rounded once. All contiguous (rows, d), w (d).
const char* add_rms_norm(DecodeDType dtype, const void* x, const void* r, const void* w, void* sum, void* out,
                         int64_t rows, int64_t d, float eps, void* stream);

// SwiGLU's product, for inference: gu (rows, 2 f), rows gu_row elements apart, last dim contiguous ->
// out (rows, f) contiguous = silu(gate) * up in fp32, rounded once.
const char* silu_mul(DecodeDType dtype, const void* gu, int64_t gu_row, void* out, int64_t rows, int64_t f,
                     void* stream);

}  // namespace cg::model::cuda
