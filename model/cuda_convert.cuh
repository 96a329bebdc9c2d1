// fp32 <-> the element types of cgtrain's CUDA kernels, as overloads (the store's argument type picks the rounding).
// tests/model/test_decode_kernels_emulated.cpp defines the fp32 pair itself to run kernels on a CPU.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace cg::model::cuda {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ void store(float v, float& out) { out = v; }
__device__ __forceinline__ void store(float v, __nv_bfloat16& out) { out = __float2bfloat16(v); }
__device__ __forceinline__ void store(float v, __half& out) { out = __float2half(v); }

}  // namespace cg::model::cuda
