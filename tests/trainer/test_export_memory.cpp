// Peak memory of cgexport --merge: exporting a ~320 MB fp32 base (hidden 1024, MLP 4096, 4 layers, vocab 8192) with
// LoRA on every linear must raise this process's peak resident set (VmHWM, file-backed mmap pages included) by well
// under the model's size: the export streams one tensor at a time. Its own executable, so nothing before it has
// grown the heap; the base and run folder are written by a forked child that exits, so the parent's heap starts small.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "lora/peft.h"
#include "model/hf_checkpoint.h"
#include "tests/trainer/export_fixture.h"
#include "tests/test_util.h"  // the process's own scratch folder: ::testing::TempDir()
#include "trainer/train_export.h"

namespace fs = std::filesystem;

namespace {

// "VmRSS" / "VmHWM" of /proc/self/status, in bytes.
int64_t status_bytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1)) * 1024;  // "  1234 kB"
  return -1;
}

cg::model::LlamaConfig mid_llama() {
  cg::model::LlamaConfig c;
  c.hidden_size = 1024, c.intermediate_size = 4096, c.num_attention_heads = 8, c.num_key_value_heads = 8;
  c.num_hidden_layers = 4, c.vocab_size = 8192, c.max_position_embeddings = 512;
  return c;
}

}  // namespace

TEST(ExportMemory, MergedExportPeakIsFarBelowTheModelSize) {
  const fs::path d = fs::path(::testing::TempDir()) / ("cg_export_mem_" + std::to_string(::getpid()));
  fs::remove_all(d);
  const auto lc = mid_llama();
  int64_t model_bytes = 0;
  for (const auto& [name, shape] : cg::model::llama_tensor_shapes(lc)) model_bytes += 4 * c10::multiply_integers(shape);

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // child: writes the base and the run, then leaves without running anything of gtest
    int rc = 0;
    try {
      cg::test::write_random_hf((d / "hf").string(), lc, at::kFloat, int64_t{1} << 30, 5);
      cg::test::make_export_run((d / "run").string(), lc, (d / "hf").string(),
                                {"lora.r=8", "lora.alpha=16", "lora.targets=all-linear"});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "setup failed: %s\n", e.what());
      rc = 1;
    }
    ::_exit(rc);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  const int64_t rss_before = status_bytes("VmRSS");
  ASSERT_GT(rss_before, 0);
  cg::export_run({(d / "run").string(), -1, (d / "out").string(), true, "fp32"});
  const int64_t peak = status_bytes("VmHWM");
  const double growth = double(peak - rss_before);
  std::printf("model %.0f MB, RSS before export %.0f MB, peak during export %.0f MB: growth %.0f MB (%.0f%% of the "
              "model)\n", model_bytes / 1e6, rss_before / 1e6, peak / 1e6, growth / 1e6, 100 * growth / model_bytes);
  EXPECT_LT(growth, 0.4 * double(model_bytes));

  // It did export the whole model: every tensor, the right size, one merged tensor spot-checked.
  const cg::model::HfCheckpoint out((d / "out").string()), base((d / "hf").string());
  EXPECT_EQ(out.keys(), base.keys());
  const int64_t payload = fs::file_size(d / "out/model.safetensors");
  EXPECT_GT(payload, model_bytes);
  EXPECT_LT(payload, model_bytes + 64 * 1024);
  const std::string k = "model.layers.3.mlp.down_proj";
  const cg::lora::PeftAdapter a = cg::lora::read_peft_adapter((d / "out/adapter").string());
  const at::Tensor ref = base.read(k + ".weight") + 2.0 * at::matmul(a.factors.at(k + ".lora_B.weight"),
                                                                     a.factors.at(k + ".lora_A.weight"));
  EXPECT_TRUE(at::allclose(out.read(k + ".weight"), ref, 1e-5, 1e-6));
  fs::remove_all(d);
}
