// The CUDA RoPE kernel's launcher: plain pointers, no torch (model/rope_cuda.cu; compiled when the build has a CUDA
// libtorch and nvcc, CG_HAVE_CUDA_KERNELS). model/rope.cpp wraps it as an autograd function.
#pragma once
#include <cstdint>

namespace cg::model::cuda {

enum class RopeDType { Float = 0, BFloat16 = 1, Half = 2 };

// Legend: R rows = B * T * H (one head of one position each), hd head_dim (even), h = hd / 2.
// x, out (B, T, H, hd) contiguous; cos, sin (T, hd) contiguous, sin's first half negated (model/rope.h), same dtype.
//   out[r, d] = x[r, d] cos[t, d] + sign · x[r, p(d)] sin[t, d],   p(d) = d + h for d < h, d - h else, t = (r / H) % T
// sign +1 is RoPE; sign -1 is its backward (the transposed rotation): dx = rope(dy) with the sine negated.
// One pass: each thread reads a vector of the first half and the matching one of the second, computes in fp32,
// rounds once. Returns nullptr, or the CUDA error's text when the launch failed.
const char* rope_bthd(RopeDType dtype, const void* x, const void* cos, const void* sin, void* out, int64_t rows,
                      int64_t T, int64_t H, int64_t hd, float sign, void* stream);

}  // namespace cg::model::cuda
