// One-pass decode attention: a fused model's decode step (Llama::decode_attention) writes each row's key and value
// and attends over the shared prefix plus the row's own positions in two calls per layer, with no per-step masks or
// chunks. On a GPU two CUDA kernels (model/decode_attention_cuda.cu, when the build has them); elsewhere the same
// computation in ATen ops row by row: the reference those kernels are tested against, slow, and reading positions on
// the host.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace cg::model {

// Whether this build compiled the CUDA kernels (CG_HAVE_CUDA_KERNELS).
bool decode_kernels_built();

// qkv (B, Hq + 2 Hkv, hd): q, k, v heads of one new token per row (heads contiguous); cos, sin (B, hd) RoPE tables
// at the rows' positions (rope_cos_sin_at); pos (B) int64; k_cache, v_cache (B, Hkv, max_len, hd) (last two dims
// contiguous); prefix_k, prefix_v (1, Hkv, P, hd) or undefined (P = 0).
// Writes row b's RoPE'd key and its value at position pos[b] (P <= pos[b] < max_len) of its cache row, then returns
// (B, Hq * hd) in qkv's dtype: per query head h (kv head h / (Hq / Hkv)), softmax(q k^T / sqrt(hd)) v over keys
// [0, P) of the prefix and [P, pos[b]] of the row, q RoPE'd, all in fp32 and rounded once.
at::Tensor one_pass_decode_attention(const at::Tensor& qkv, const at::Tensor& cos, const at::Tensor& sin,
                                     const at::Tensor& pos, const at::Tensor& k_cache, const at::Tensor& v_cache,
                                     const at::Tensor& prefix_k, const at::Tensor& prefix_v, int64_t Hq, int64_t Hkv);

// The reference: the same computation in ATen ops, row by row, on any device (what one_pass_decode_attention runs
// off a GPU).
at::Tensor one_pass_decode_attention_reference(const at::Tensor& qkv, const at::Tensor& cos, const at::Tensor& sin,
                                               const at::Tensor& pos, const at::Tensor& k_cache,
                                               const at::Tensor& v_cache, const at::Tensor& prefix_k,
                                               const at::Tensor& prefix_v, int64_t Hq, int64_t Hkv);

// On a GPU: the kernels against the reference on random inputs of this shape (a few rows at assorted positions, a
// prefix of P positions or none) -> the largest difference of outputs and cache entries, relative to the largest
// reference value. Llama checks each shape once before its first one-pass decode step (decode_kernels_check_once).
double decode_kernels_max_error(at::ScalarType dtype, at::Device device, int64_t Hq, int64_t Hkv, int64_t hd,
                                int64_t P, uint64_t seed = 0);

// decode_kernels_max_error for this (dtype, device, heads, hd) unless this process checked it already; an error that
// says to set sample.decode_attention=ops when the kernels disagree with the reference.
void decode_kernels_check_once(at::ScalarType dtype, at::Device device, int64_t Hq, int64_t Hkv, int64_t hd);

}  // namespace cg::model
