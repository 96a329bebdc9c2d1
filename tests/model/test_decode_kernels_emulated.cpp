// cgtrain's decoding CUDA kernels (model/decode_kernels.cuh: the one-pass attention, add + RMSNorm, SiLU x up) run
// on a CPU: each block's threads are OS threads, a warp's shuffle and the block's __syncthreads are barriers,
// __shared__ arrays are statics (blocks run one after another). This checks the kernels' indexing, their warp and
// block reductions, the online softmax and the merge of the warps against the ATen references
// (model/decode_kernels.h) in fp32, bf16 and fp16 on machines without a GPU, each within the bound the GPU build's
// self-check holds it to; the GPU suite (test_model_attention's
// CudaKernelsEqualTheReference) runs the compiled kernels where there is one.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#include "model/decode_kernels.h"
#include "model/decode_kernels_cuda.h"
#include "model/rope.h"

namespace emu {

struct Dim3 {
  unsigned x = 0, y = 0, z = 0;
};

class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    const int64_t gen = generation_;
    if (++waiting_ == n_) {
      waiting_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_, waiting_ = 0;
  int64_t generation_ = 0;
};

struct Block {
  explicit Block(int threads) : all(threads) {
    for (int w = 0; w < (threads + 31) / 32; ++w) {
      warps.push_back(std::make_unique<Barrier>(std::min(32, threads - 32 * w)));
      lanes.emplace_back(32, 0.f);
    }
  }
  Barrier all;
  std::vector<std::unique_ptr<Barrier>> warps;
  std::vector<std::vector<float>> lanes;  // per warp: what each lane offers to a shuffle
};

thread_local Dim3 thread_idx, block_idx;
thread_local Block* block = nullptr;
Dim3 block_dim;

// Every block of the grid, one after another, run by the same `threads` OS threads: each runs kernel() as its
// thread of block 0, waits for all, then block 1, and so on (so __shared__ statics pass from one block to the next
// only after every thread is done with them).
template <typename F>
void launch(Dim3 grid, unsigned threads, F kernel) {
  block_dim = {threads, 1, 1};
  Block blk(static_cast<int>(threads));
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      thread_idx = {t, 0, 0};
      block = &blk;
      for (unsigned by = 0; by < grid.y; ++by)
        for (unsigned bx = 0; bx < grid.x; ++bx) {
          block_idx = {bx, by, 0};
          kernel();
          blk.all.wait();
        }
    });
  for (auto& th : pool) th.join();
}

}  // namespace emu

// (Undefined first, in case a CUDA build's headers defined them.)
#undef __global__
#undef __device__
#undef __forceinline__
#undef __launch_bounds__
#undef __shared__
#define threadIdx emu::thread_idx
#define blockIdx emu::block_idx
#define blockDim emu::block_dim
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static  // blocks run one at a time

inline void __syncthreads() { emu::block->all.wait(); }
inline float __shfl_xor_sync(unsigned /*mask*/, float v, int lane_mask) {
  const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  auto& offered = emu::block->lanes[warp];
  auto& bar = *emu::block->warps[warp];
  offered[lane] = v;
  bar.wait();
  const float r = offered[lane ^ static_cast<unsigned>(lane_mask)];
  bar.wait();  // everyone has read before anyone offers again
  return r;
}
inline float __expf(float x) { return std::exp(x); }
inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

// The element types as the CPU has them: c10's bf16 and fp16 round to nearest even, as __float2bfloat16 and
// __float2half do (model/cuda_convert.cuh), and share their 2-byte layouts.
namespace cg::model::cuda {
inline float to_float(float v) { return v; }
inline float to_float(c10::BFloat16 v) { return static_cast<float>(v); }
inline float to_float(c10::Half v) { return static_cast<float>(v); }
inline void store(float v, float& out) { out = v; }
inline void store(float v, c10::BFloat16& out) { out = c10::BFloat16(v); }
inline void store(float v, c10::Half& out) { out = c10::Half(v); }
#include "model/decode_kernels.cuh"
}  // namespace cg::model::cuda

using namespace cg::model;

namespace {

// The kernels as decode_kernels_cuda.cu launches them, on CPU tensors of T's dtype; the caches are written in place.
template <typename T>
at::Tensor run_kernels(const at::Tensor& qkv, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& pos,
                       at::Tensor kv, const at::Tensor& pk, const at::Tensor& pv, int64_t Hq, int64_t Hkv) {
  const int64_t B = qkv.size(0), hd = qkv.size(2), P = pk.defined() ? pk.size(2) : 0;
  auto out = at::full({B, Hq * hd}, -7.f, qkv.options());
  auto k = kv[0], v = kv[1];
  cuda::DecodeAttentionArgs a;
  a.B = B, a.Hq = Hq, a.Hkv = Hkv, a.hd = hd, a.P = P, a.max_len = k.size(2);
  a.qkv = qkv.data_ptr(), a.qkv_row = qkv.stride(0), a.cos = cos.data_ptr(), a.sin = sin.data_ptr();
  a.pos = pos.data_ptr<int64_t>(), a.k_cache = k.data_ptr(), a.v_cache = v.data_ptr();
  a.cache_b = k.stride(0), a.cache_h = k.stride(1);
  a.prefix_k = P > 0 ? pk.data_ptr() : nullptr, a.prefix_v = P > 0 ? pv.data_ptr() : nullptr;
  a.out = out.data_ptr(), a.scale = static_cast<float>(1.0 / std::sqrt(double(hd)));
  const int64_t n = B * Hkv * (hd / 2);
  emu::launch({static_cast<unsigned>((n + 255) / 256), 1, 0}, 256, [&] { cuda::write_kv_kernel<T>(a); });
  const emu::Dim3 grid{static_cast<unsigned>(B), static_cast<unsigned>(Hq), 0};
  const unsigned threads = cuda::kWarps * 32;
  const int64_t lanes_per_dim = (hd + 31) / 32;  // as launch_attention picks the instantiation
  if (lanes_per_dim <= 1)
    emu::launch(grid, threads, [&] { cuda::attention_kernel<T, 1>(a); });
  else if (lanes_per_dim <= 2)
    emu::launch(grid, threads, [&] { cuda::attention_kernel<T, 2>(a); });
  else if (lanes_per_dim <= 4)
    emu::launch(grid, threads, [&] { cuda::attention_kernel<T, 4>(a); });
  else
    emu::launch(grid, threads, [&] { cuda::attention_kernel<T, 8>(a); });
  return out;
}

// The element type T of at::ScalarType dt, a kernel's output against its reference: fp32 to ~1e-5 (the same
// arithmetic in another order); every dtype within the bound the GPU build's once-per-shape check allows
// (kernel_tolerance: both sides round once from fp32), so a bf16 or fp16 model on a GPU passes that check.
void expect_close(at::ScalarType dt, const std::vector<std::pair<at::Tensor, at::Tensor>>& pairs) {
  const double err = kernel_relative_error(pairs);
  EXPECT_LE(err, dt == at::kFloat ? 1e-5 : kernel_tolerance(dt)) << c10::toString(dt);
}

template <typename T>
void attention_equals_the_reference(at::ScalarType dt) {
  // Head dims taking each instantiation (1, 2, 4, 8 values per lane; 6 and 40 leave lanes idle), GQA and not, with
  // and without a shared prefix; rows at assorted positions, one with a single own key (pos = P) and one at the
  // cache's last position, so warps see from one key to 4 groups each and some warps none.
  for (const auto& [Hq, Hkv, hd, P] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {2, 2, 6, 0}, {4, 2, 16, 3}, {3, 1, 40, 0}, {2, 1, 64, 9}, {2, 2, 128, 5}, {1, 1, 256, 2}}) {
    SCOPED_TRACE(testing::Message() << c10::toString(dt) << " Hq " << Hq << " Hkv " << Hkv << " hd " << hd << " P "
                                    << P);
    const std::vector<int64_t> steps{0, 1, 17, 36, 4};
    const int64_t B = static_cast<int64_t>(steps.size()), max_len = P + 37;
    auto g = at::make_generator<at::CPUGeneratorImpl>(hd * 31 + P);
    std::vector<int64_t> positions;
    for (const int64_t s : steps) positions.push_back(P + s);
    const auto pos = at::tensor(positions, at::TensorOptions().dtype(at::kLong));
    const auto [cos, sin] = rope_cos_sin_at(pos, hd, 10000.0, dt);
    const auto qkv = (at::randn({B, Hq + 2 * Hkv, hd}, g) * 2).to(dt);  // sharper softmaxes
    const auto kv = at::randn({2, B, Hkv, max_len, hd}, g).to(dt);
    at::Tensor pk, pv;
    if (P > 0) pk = at::randn({1, Hkv, P, hd}, g).to(dt), pv = at::randn({1, Hkv, P, hd}, g).to(dt);
    auto kv_kernel = kv.clone(), kv_ref = kv.clone();
    const auto got = run_kernels<T>(qkv, cos, sin, pos, kv_kernel, pk, pv, Hq, Hkv);
    const auto want = one_pass_decode_attention_reference(qkv, cos, sin, pos, kv_ref[0], kv_ref[1], pk, pv, Hq, Hkv);
    ASSERT_EQ(got.scalar_type(), dt);
    expect_close(dt, {{got, want}, {kv_kernel, kv_ref}});
    // Only the rows' own positions were written.
    const auto changed = (kv_kernel != kv).any(-1);  // (2, B, Hkv, max_len)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < max_len; ++t)
        if (t != positions[b]) ASSERT_FALSE(changed.select(1, b).select(-1, t).any().item().toBool()) << b << " " << t;
  }
}

}  // namespace

TEST(DecodeKernelsEmulated, EqualTheReference) {
  attention_equals_the_reference<float>(at::kFloat);
  attention_equals_the_reference<c10::BFloat16>(at::kBFloat16);
  attention_equals_the_reference<c10::Half>(at::kHalf);
}

TEST(DecodeKernelsEmulated, APositionOutsideThePrefixAndCacheGivesNaNAndWritesNothing) {
  const int64_t Hq = 2, Hkv = 1, hd = 8, P = 3, max_len = 10;
  const auto pos = at::tensor(std::vector<int64_t>{2, 5, 10}, at::TensorOptions().dtype(at::kLong));  // 2, 10 bad
  const auto [cos, sin] = rope_cos_sin_at(pos, hd, 10000.0, at::kFloat);
  const auto qkv = at::randn({3, Hq + 2 * Hkv, hd});
  const auto kv = at::randn({2, 3, Hkv, max_len, hd});
  const auto pk = at::randn({1, Hkv, P, hd}), pv = at::randn({1, Hkv, P, hd});
  auto written = kv.clone();
  const auto out = run_kernels<float>(qkv, cos, sin, pos, written, pk, pv, Hq, Hkv);
  EXPECT_TRUE(out[0].isnan().all().item<bool>());
  EXPECT_TRUE(out[2].isnan().all().item<bool>());
  EXPECT_FALSE(out[1].isnan().any().item<bool>());
  EXPECT_TRUE(at::equal(written.select(1, 0), kv.select(1, 0)));  // the bad rows' caches untouched
  EXPECT_TRUE(at::equal(written.select(1, 2), kv.select(1, 2)));
  EXPECT_FALSE(at::equal(written.select(1, 1), kv.select(1, 1)));  // the good row's key and value at 5
}

namespace {

template <typename T>
void norm_and_silu_equal_the_references(at::ScalarType dt) {
  // add + RMSNorm: one block of 256 threads a row, widths below, at and above the block (each thread 0, 1 or several
  // elements; the sum of squares reduced across 8 warps); with the residual and the sum written, and without either.
  // SiLU x up: rows of 2 f, f not a multiple of the block.
  auto g = at::make_generator<at::CPUGeneratorImpl>(5);
  for (const int64_t d : {6, 64, 256, 300, 1000}) {
    SCOPED_TRACE(testing::Message() << c10::toString(dt) << " d " << d);
    const int64_t rows = 3;
    const auto x = at::randn({rows, d}, g).to(dt), r = at::randn({rows, d}, g).to(dt);
    const auto w = (at::rand({d}, g) + 0.5).to(dt);
    auto out = at::full({rows, d}, -7.f, x.options()), sum = at::full({rows, d}, -7.f, x.options());
    auto alone = at::full({rows, d}, -7.f, x.options());
    const auto ptr = [](const at::Tensor& t) { return static_cast<T*>(t.data_ptr()); };
    emu::launch({static_cast<unsigned>(rows), 1, 0}, cuda::kNormThreads, [&] {
      cuda::add_rms_norm_kernel<T>(ptr(x), ptr(r), ptr(w), ptr(sum), ptr(out), d, 1e-5f);
    });
    emu::launch({static_cast<unsigned>(rows), 1, 0}, cuda::kNormThreads, [&] {
      cuda::add_rms_norm_kernel<T>(ptr(x), nullptr, ptr(w), nullptr, ptr(alone), d, 1e-5f);
    });
    at::Tensor want_sum;
    const auto want = add_rms_norm_reference(x, r, w, 1e-5, &want_sum);
    expect_close(dt, {{out, want}, {alone, add_rms_norm_reference(x, {}, w, 1e-5)}});
    EXPECT_TRUE(at::equal(sum, want_sum));  // the residual stream: x + r rounded once, on both sides
  }
  for (const int64_t f : {3, 172, 300}) {
    SCOPED_TRACE(testing::Message() << c10::toString(dt) << " f " << f);
    const int64_t rows = 4;
    const auto gu = (at::randn({rows, 2 * f}, g) * 3).to(dt);
    auto out = at::full({rows, f}, -7.f, gu.options());
    emu::launch({static_cast<unsigned>((rows * f + 255) / 256), 1, 0}, 256, [&] {
      cuda::silu_mul_kernel<T>(static_cast<const T*>(gu.data_ptr()), 2 * f, static_cast<T*>(out.data_ptr()), rows, f);
    });
    expect_close(dt, {{out, silu_mul_reference(gu)}});
  }
}

}  // namespace

TEST(DecodeKernelsEmulated, AddRmsNormAndSiluMulEqualTheReferences) {
  norm_and_silu_equal_the_references<float>(at::kFloat);
  norm_and_silu_equal_the_references<c10::BFloat16>(at::kBFloat16);
  norm_and_silu_equal_the_references<c10::Half>(at::kHalf);
}
