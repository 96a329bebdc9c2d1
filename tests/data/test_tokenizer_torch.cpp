// A torch process can use cg::Tokenizer: this binary links libtorch and cg_data, loads the tokenizer cgprep trained
// (the cgprep_smoke fixture) and LLaMA-2's, encodes crystal text into a tensor, and checks that libsentencepiece
// (whose bundled protobuf crashes next to libtorch's) is not in the process at all.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/crystal_text.h"
#include "data/mp20.h"
#include "data/sp_model.h"
#include "data/tokenizer.h"

namespace {

std::string maps() {
  std::ifstream in("/proc/self/maps");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(TokenizerInTorchProcess, NoSentencepieceLoaded) {
  const std::string m = maps();
  EXPECT_NE(m.find("libtorch"), std::string::npos) << "this test must run inside a libtorch process";
  // libsentencepiece carries protobuf 3.14 inside itself (no libprotobuf.so of its own to look for).
  EXPECT_EQ(m.find("libsentencepiece"), std::string::npos) << "libsentencepiece is loaded next to libtorch";
}

TEST(TokenizerInTorchProcess, CgprepTrainedTokenizer) {
  // The cgprep_smoke test's shards, in the folder of its fixture (tests/scripts/fixture_dir.sh, which ctest runs this
  // through: tests/data/CMakeLists.txt).
  const char* shards = std::getenv("CG_FIXTURE_DIR");
  if (shards == nullptr) GTEST_SKIP() << "CG_FIXTURE_DIR is not set: run by ctest, after the cgprep_smoke test";
  const std::string path = std::string(shards) + "/tokenizer.model";
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " is absent: the cgprep_smoke test writes it";
  const cg::Tokenizer tok = cg::Tokenizer::load(path);
  EXPECT_LE(tok.vocab_size(), 400);
  const auto crystals = cg::read_mp20(std::string(CG_SOURCE_DIR) + "/data/mp20/test.csv.gz", 20).crystals;
  ASSERT_EQ(crystals.size(), 20u);
  for (const auto& c : crystals) {
    const std::string text = cg::crystal_to_text(c);
    const std::vector<int32_t> ids = tok.encode(text, true);
    ASSERT_EQ(ids[0], tok.bos_id());
    at::Tensor t = at::tensor(at::ArrayRef<int32_t>(ids), at::kInt);  // (T,)
    EXPECT_EQ(t.size(0), int64_t(ids.size()));
    EXPECT_LT(t.max().item<int32_t>(), tok.vocab_size());
    EXPECT_EQ(tok.decode(ids), text);
    // Digits are split, so there are at least as many tokens as digits.
    EXPECT_GE(int64_t(ids.size()), int64_t(std::count_if(text.begin(), text.end(), ::isdigit)));
  }
}

TEST(TokenizerInTorchProcess, Llama2Ids) {
  const std::string js = std::string(CG_SOURCE_DIR) + "/third_party/llama-tokenizer-js/llama-tokenizer.js";
  if (!std::filesystem::exists(js)) GTEST_SKIP() << js << " is absent";
  const cg::Tokenizer tok = cg::Tokenizer::from_bytes(cg::serialize_sp_model(cg::sp_model_from_llama_tokenizer_js(js)));
  const std::vector<int32_t> ids = tok.encode("Hello world", true);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 15043, 3186}));
  EXPECT_EQ(at::tensor(at::ArrayRef<int32_t>(ids), at::kInt).sum().item<int32_t>(), 1 + 15043 + 3186);
}
