// common/kernel_table.h: the sums behind the GPU kernel profile (bench_train_step --kernels, CG_KERNEL_PROFILE).
#include "common/kernel_table.h"

#include <gtest/gtest.h>

namespace cg {
namespace {

TEST(KernelTable, ClassifiesKernelNamesByWhatTheyDo) {
  EXPECT_STREQ(kernel_class("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64"), "matmul");
  EXPECT_STREQ(kernel_class("nvjet_tst_256x128_64x4_2x1_v_bz_coopB_TNT"), "matmul");
  EXPECT_STREQ(kernel_class("void cutlass::Kernel2<cutlass_80_wmma_tensorop_bf16_s161616gemm>(Params)"), "matmul");
  EXPECT_STREQ(kernel_class("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128>>(Params)"),
               "attention");
  EXPECT_STREQ(kernel_class("fmha_cutlassF_bf16_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel)"),
               "attention");
  EXPECT_STREQ(kernel_class("Memcpy HtoD (Pageable -> Device)"), "memcpy/memset");
  EXPECT_STREQ(kernel_class("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::"
                            "BFloat16>>(int, at::native::CUDAFunctor_add<c10::BFloat16>)"),
               "other (elementwise, norms, reductions)");
}

TEST(KernelTable, SumsByNameAndClassAndSortsLargestFirst) {
  KernelTable t;
  t.add("gemm_a", 100);
  t.add("add_kernel", 30);
  t.add("gemm_a", 50);
  t.add("flash_fwd", 20);
  t.add("add_kernel", 10);
  t.sort();
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[0].name, "gemm_a");
  EXPECT_DOUBLE_EQ(t.rows[0].total_us, 150);
  EXPECT_EQ(t.rows[0].calls, 2);
  EXPECT_EQ(t.rows[1].name, "add_kernel");
  EXPECT_DOUBLE_EQ(t.rows[1].total_us, 40);
  EXPECT_EQ(t.rows[1].calls, 2);
  EXPECT_EQ(t.rows[2].name, "flash_fwd");
  EXPECT_DOUBLE_EQ(t.total_us, 210);
  EXPECT_DOUBLE_EQ(t.class_us.at("matmul"), 150);
  EXPECT_DOUBLE_EQ(t.class_us.at("attention"), 20);
  EXPECT_DOUBLE_EQ(t.class_us.at("other (elementwise, norms, reductions)"), 40);
}

TEST(KernelTable, ShortensLongNamesToTheWidth) {
  EXPECT_EQ(short_kernel_name("void foo(int)"), "foo(int)");
  const std::string long_name(300, 'k');
  const std::string s = short_kernel_name(long_name, 50);
  EXPECT_EQ(s.size(), 50u);
  EXPECT_EQ(s.substr(47), "...");
}

}  // namespace
}  // namespace cg
