// cgtrain's decoding kernels, for a fused model (Llama::fuse_for_inference, Llama::decode_kernels) on a GPU, each with
// an ATen reference it is tested against (model/decode_kernels_cuda.cu, when the build has them):
// - one-pass decode attention: a decode step writes each row's key and value and attends over the shared prefix
//   plus the row's own positions in two kernels per layer, with no per-step masks or chunks. Off a GPU the reference
//   runs (row by row, reading positions on the host: slow, for tests);
// - the residual add with RMSNorm in one kernel, SwiGLU's SiLU x up in one (off a GPU the model keeps its own ops,
//   or runs these references with DecodeKernels::On).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

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

// Where add_rms_norm and silu_mul run their CUDA kernels instead of their references: a build with the kernels, x on
// a GPU in fp32, bf16 or fp16, and no gradient wanted (the kernels have no backward; a fused model is for inference).
bool inference_kernels_fit(const at::Tensor& x);

// The residual add and RMSNorm of a fused model's layer (RMSNorm::forward_fused): x and residual (undefined: none)
// (..., d), weight (d) -> weight * s / sqrt(mean(s^2) + eps) with s = x + residual rounded to x's dtype (the residual
// stream's value, returned in *sum when asked), in fp32 and rounded once. One CUDA kernel where inference_kernels_fit
// (three ops otherwise), else the reference.
at::Tensor add_rms_norm(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight, double eps,
                        at::Tensor* sum = nullptr);
at::Tensor add_rms_norm_reference(const at::Tensor& x, const at::Tensor& residual, const at::Tensor& weight,
                                  double eps, at::Tensor* sum = nullptr);

// SwiGLU's product of a fused model's MLP: gu (..., 2 f) = [gate | up] -> silu(gate) * up (..., f), in fp32 and
// rounded once. One CUDA kernel where inference_kernels_fit (two ops otherwise), else the reference.
at::Tensor silu_mul(const at::Tensor& gu);
at::Tensor silu_mul_reference(const at::Tensor& gu);

// Each kernel against its reference on random GPU inputs of this shape -> the largest difference (outputs, and for
// the attention the cache entries written) over the largest reference value. Every wrapper above runs this once per
// shape and process before the kernel's first use, and stops (saying to set sample.decode_kernels=off) when it
// exceeds one rounding of the outputs. attention: rows at assorted positions past a prefix of P (0: none). CUDA
// builds only (else an error).
// The measure those checks use: the largest |got - want| over the largest |want| across the pairs (NaN counts as
// huge), and the bound it must stay under for outputs both sides round once from fp32 to dtype (about a unit in the
// last place of the largest value). tests/model/test_decode_kernels_emulated.cpp holds the kernels to the same bound.
double kernel_relative_error(const std::vector<std::pair<at::Tensor, at::Tensor>>& pairs);
double kernel_tolerance(at::ScalarType dtype);
double attention_kernel_error(at::ScalarType dtype, at::Device device, int64_t Hq, int64_t Hkv, int64_t hd,
                              int64_t P, uint64_t seed = 0);
double norm_kernel_error(at::ScalarType dtype, at::Device device, int64_t d, double eps, uint64_t seed = 0);
double silu_kernel_error(at::ScalarType dtype, at::Device device, int64_t f, uint64_t seed = 0);

// Whether a fused model (Llama::fuse_for_inference; an unfused one never does) runs the kernels above, each
// checked against its reference once per shape before its first use:
//   On:   the one-pass decode attention (per layer one call writes the rows' keys and values, one attends each row
//         over exactly its own positions), add + RMSNorm and SiLU x up as CUDA kernels on a GPU; off a GPU their
//         ATen references (the attention's row by row: slow, for tests).
//   Off:  libtorch's operators: attention over chunks (decode_chunks, masks), ~14 kernels a layer; norms and SwiGLU
//         as 3 and 2.
//   Auto: On on a GPU when the build has the kernels (decode_kernels_built), else Off.
enum class DecodeKernels { Auto, On, Off };
// "auto" | "on" | "off" (sample.decode_kernels); errors list the choices.
DecodeKernels decode_kernels_from(const std::string& name);

// Whether a fused module's op on x takes its kernel wrapper above (the kernel on a GPU, the reference elsewhere):
// On always, Auto where inference_kernels_fit(x), Off never.
inline bool use_decode_kernel(DecodeKernels mode, const at::Tensor& x) {
  return mode == DecodeKernels::On || (mode == DecodeKernels::Auto && inference_kernels_fit(x));
}

}  // namespace cg::model
