// Streaming safetensors / HF checkpoint writers: byte-identical to a straightforward all-in-memory reference writer
// (the implementation they replaced), plan-order contracts, temp files that never look complete, a full disk
// (RLIMIT_FSIZE) that leaves no model file behind; llama_tensor_shapes == Llama::param_specs without allocating.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"
#include "model/safetensors.h"
#include "tests/test_util.h"
#include "tests/model/small_llama.h"

using namespace cg::model;
namespace fs = std::filesystem;

namespace {

using cg::test::contains;
using cg::test::error_of;
using cg::test::FileSizeLimit;

struct WriterDir : cg::test::TempDir {
  WriterDir() : cg::test::TempDir("cg_hfw") {}
};

using Named = std::vector<std::pair<std::string, at::Tensor>>;

// The reference: all tensors in memory, header built from them, one ofstream (the writer before streaming).
void reference_write_safetensors(const std::string& path, const Named& tensors,
                                 const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();  // an empty file's header is {} (readers reject null)
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t0] : tensors) {
    auto t = t0.detach().contiguous();
    const uint64_t bytes = t.numel() * t.element_size();
    h[name] = {{"dtype", safetensors_dtype(t.scalar_type())}, {"shape", t.sizes().vec()},
               {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(t);
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header;
  for (const auto& t : data) out.write(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
}

void reference_write_hf(const std::string& dir, const Named& tensors, const LlamaConfig& c, int64_t max_shard) {
  fs::create_directories(dir);
  const at::ScalarType dt = tensors.empty() ? at::kBFloat16 : tensors.front().second.scalar_type();
  std::ofstream(fs::path(dir) / "config.json") << c.to_hf_json(dt == at::kFloat ? "float32" : "bfloat16");
  std::vector<Named> shards(1);
  int64_t in_shard = 0, total = 0;
  for (const auto& nt : tensors) {
    const int64_t bytes = nt.second.numel() * nt.second.element_size();
    if (!shards.back().empty() && in_shard + bytes > max_shard) shards.emplace_back(), in_shard = 0;
    shards.back().push_back(nt);
    in_shard += bytes, total += bytes;
  }
  if (shards.size() == 1) {
    reference_write_safetensors(dir + "/model.safetensors", shards[0], {{"format", "pt"}});
    return;
  }
  nlohmann::ordered_json index, map = nlohmann::ordered_json::object();
  index["metadata"] = {{"total_size", total}};
  for (size_t i = 0; i < shards.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    reference_write_safetensors(dir + "/" + name, shards[i], {{"format", "pt"}});
    for (const auto& nt : shards[i]) map[nt.first] = name;
  }
  index["weight_map"] = map;
  std::ofstream(fs::path(dir) / "model.safetensors.index.json") << index.dump(2) << "\n";
}

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// file name -> bytes, for every regular file of dir.
std::map<std::string, std::string> folder(const std::string& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::directory_iterator(dir)) m[e.path().filename().string()] = bytes_of(e.path());
  return m;
}

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> n;
  for (const auto& e : fs::directory_iterator(dir)) n.push_back(e.path().filename().string());
  std::sort(n.begin(), n.end());
  return n;
}

Named model_tensors(const LlamaConfig& c, at::ScalarType dt) {
  Llama m(c, TpShape{}, at::TensorOptions().dtype(at::kFloat));
  init_weights(*m, 5, 0.1);
  Named t;
  for (const auto& s : m->param_specs()) t.emplace_back(s.name, s.param.detach().to(dt));
  return t;
}

}  // namespace

TEST(SafetensorsWriter, ByteIdenticalToTheInMemoryWriter) {
  WriterDir d;
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto w = at::randn({5, 7}, g);
  const Named ts = {{"f32", w}, {"bf16", w.to(at::kBFloat16)}, {"f16", w.to(at::kHalf)}, {"empty", at::zeros({0, 3})},
                    {"i64", at::arange(6, at::kLong).view({2, 3})}, {"u8", at::arange(5, at::kByte)},
                    {"t_view", w.t()}, {"scalar", at::scalar_tensor(2.5)}};
  for (const auto& md : {std::map<std::string, std::string>{}, {{"format", "pt"}, {"k", "v"}}}) {
    reference_write_safetensors(d / "ref.safetensors", ts, md);
    write_safetensors(d / "new.safetensors", ts, md);
    EXPECT_EQ(bytes_of(d / "new.safetensors"), bytes_of(d / "ref.safetensors")) << md.size();
    // Streamed by hand, one tensor at a time.
    std::vector<TensorEntry> plan;
    for (const auto& [n, t] : ts) plan.push_back({n, t.scalar_type(), t.sizes().vec()});
    SafetensorsWriter sw(d / "stream.safetensors", plan, md);
    for (const auto& [n, t] : ts) sw.write(n, t);
    sw.finish();
    EXPECT_EQ(bytes_of(d / "stream.safetensors"), bytes_of(d / "ref.safetensors"));
    EXPECT_EQ(sw.file_bytes(), fs::file_size(d / "ref.safetensors"));
  }
  reference_write_safetensors(d / "ref0.safetensors", {}, {});
  write_safetensors(d / "new0.safetensors", {}, {});
  EXPECT_EQ(bytes_of(d / "new0.safetensors"), bytes_of(d / "ref0.safetensors"));
  EXPECT_EQ(names_in(d.path.string()), (std::vector<std::string>{"new.safetensors", "new0.safetensors",
                                                                 "ref.safetensors", "ref0.safetensors",
                                                                 "stream.safetensors"}));  // no .tmp left
}

TEST(HfCheckpointWriter, ByteIdenticalToTheInMemoryWriterSingleAndSharded) {
  WriterDir d;
  const auto c = cg::test::small_llama();
  for (auto dt : {at::kFloat, at::kBFloat16}) {
    const Named t = model_tensors(c, dt);
    for (int64_t max_shard : {int64_t{5} << 30, int64_t{16} * 1024, int64_t{1}}) {
      fs::remove_all(d.path / "ref"), fs::remove_all(d.path / "new");
      reference_write_hf(d / "ref", t, c, max_shard);
      write_hf_checkpoint(d / "new", t, c, max_shard);
      const auto ref = folder(d / "ref"), got = folder(d / "new");
      ASSERT_EQ(ref.size(), got.size()) << max_shard;
      for (const auto& [name, bytes] : ref) {
        ASSERT_TRUE(got.count(name)) << name;
        EXPECT_TRUE(got.at(name) == bytes) << name << " differs (shard size " << max_shard << ")";
      }
      if (max_shard == 1) EXPECT_EQ(ref.size(), t.size() + 2);  // one shard per tensor + config + index
    }
  }
  // config.json names the tensors' dtype (transformers' torch_dtype="auto" loads in it): the last folder is bf16.
  EXPECT_NE(folder(d / "new").at("config.json").find("\"torch_dtype\": \"bfloat16\""), std::string::npos);
  write_hf_checkpoint(d / "f32", model_tensors(c, at::kFloat), c, int64_t{5} << 30);
  EXPECT_NE(folder(d / "f32").at("config.json").find("\"torch_dtype\": \"float32\""), std::string::npos);
  // Mixed dtypes (bf16 matrices beside fp32 norms, as Meta's checkpoints and merges of them hold): the dtype of most
  // of the bytes, whatever comes first in the last shard (before, a shard starting with an fp32 norm said float32).
  Named mixed = model_tensors(c, at::kBFloat16);
  for (auto& [n, x] : mixed)
    if (x.dim() == 1) x = x.to(at::kFloat);
  std::stable_partition(mixed.begin(), mixed.end(), [](const auto& nt) { return nt.second.dim() == 1; });
  write_hf_checkpoint(d / "mixed", mixed, c, int64_t{5} << 30);
  EXPECT_NE(folder(d / "mixed").at("config.json").find("\"torch_dtype\": \"bfloat16\""), std::string::npos);
  EXPECT_EQ(hf_dtype_name(at::kHalf), "float16");
  EXPECT_TRUE(contains(error_of([] { hf_dtype_name(at::kDouble); }), "no Hugging Face LLaMA checkpoint holds"));
  // The shard plan alone (no tensors) gives the same layout as the files.
  std::vector<TensorEntry> plan;
  for (const auto& [n, x] : model_tensors(c, at::kFloat)) plan.push_back({n, x.scalar_type(), x.sizes().vec()});
  const auto shards = plan_hf_shards(plan, 16 * 1024);
  HfCheckpoint ck(d / "new");  // the last one written: bf16 at 1 byte per shard
  EXPECT_EQ(plan_hf_shards(plan, 1).size(), ck.num_files());
  uint64_t total = 0;
  for (const auto& s : shards) {
    EXPECT_LE(s.bytes, 16u * 1024u) << s.file;
    total += s.bytes;
  }
  EXPECT_EQ(total, 4u * 37 * 32 * 2 +
                       4u * (2 * (32 * 32 + 16 * 32 + 16 * 32 + 32 * 32 + 3 * 48 * 32 + 2 * 32) + 32));
}

TEST(HfCheckpointWriter, TensorsMustComeInPlanOrderAndUnfinishedLeavesNothing) {
  WriterDir d;
  const auto c = cg::test::small_llama();
  const Named t = model_tensors(c, at::kFloat);
  std::vector<TensorEntry> plan;
  for (const auto& [n, x] : t) plan.push_back({n, x.scalar_type(), x.sizes().vec()});
  {
    HfCheckpointWriter w(d / "a", plan, c, 16 * 1024);
    ASSERT_GT(w.shards().size(), 2u);
    ASSERT_EQ(w.shards()[0].tensors.size(), 4u);  // embed, q, k, v (16 KiB holds no o_proj after them)
    for (size_t i = 0; i < 5; ++i) w.write(t[i].first, t[i].second);
    EXPECT_TRUE(fs::exists(d / ("a/" + w.shards()[0].file)));           // a complete shard is renamed into place
    EXPECT_TRUE(fs::exists(d / ("a/" + w.shards()[1].file + ".tmp")));  // the current one is a temp file
    EXPECT_FALSE(fs::exists(d / ("a/" + w.shards()[1].file)));
    EXPECT_FALSE(fs::exists(d / "a/model.safetensors.index.json"));
    auto e = error_of([&] { w.write(t[6].first, t[6].second); });  // skips t[5]
    EXPECT_TRUE(contains(e, "got tensor " + t[6].first + " where the plan has " + t[5].first)) << e;
  }  // the failed write removed this writer's shards
  EXPECT_TRUE(names_in(d / "a").empty());
  {
    HfCheckpointWriter w(d / "b", plan, c);
    auto e = error_of([&] { w.write(t[0].first, t[0].second.to(at::kHalf)); });
    EXPECT_TRUE(contains(e, "plan says Float")) << e;
  }
  EXPECT_TRUE(names_in(d / "b").empty());
  {
    HfCheckpointWriter w(d / "c", plan, c, 16 * 1024);
    for (size_t i = 0; i + 1 < t.size(); ++i) w.write(t[i].first, t[i].second);
    auto e = error_of([&] { w.finish(); });
    EXPECT_TRUE(contains(e, "before tensor lm_head.weight was written")) << e;
  }
  EXPECT_TRUE(names_in(d / "c").empty());
  {
    HfCheckpointWriter w(d / "d", plan, c, 16 * 1024);
    for (size_t i = 0; i < 3; ++i) w.write(t[i].first, t[i].second);
  }  // destroyed unfinished (an exception elsewhere)
  EXPECT_TRUE(names_in(d / "d").empty());
  // The same name in two shards would make an unreadable folder.
  auto e = error_of([&] { HfCheckpointWriter w(d / "e", {plan[0], plan[1], plan[0]}, c, 1); });
  EXPECT_TRUE(contains(e, "tensor model.embed_tokens.weight given twice")) << e;
}

TEST(HfCheckpointWriter, FullDiskNamesTheFileAndRemovesEveryShard) {
  WriterDir d;
  const auto c = cg::test::small_llama();
  // Three shards, the last (a big tensor) over the file size limit: the first two complete before it fails.
  Named t = {{"a", at::ones({1000})}, {"b", at::ones({1000})}, {"c", at::ones({50000})}};
  std::vector<TensorEntry> plan;
  for (const auto& [n, x] : t) plan.push_back({n, x.scalar_type(), x.sizes().vec()});
  // An earlier complete export in the folder: its index must not survive next to new shards.
  write_hf_checkpoint(d / "out", t, c, 4096);
  ASSERT_TRUE(fs::exists(d / "out/model.safetensors.index.json"));
  std::string e;
  {
    FileSizeLimit limit(64 * 1024);
    HfCheckpointWriter w(d / "out", plan, c, 4096);
    ASSERT_EQ(w.shards().size(), 3u);
    e = error_of([&] {
      for (const auto& [n, x] : t) w.write(n, x);
      w.finish();
    });
  }
  EXPECT_TRUE(contains(e, "model-00003-of-00003.safetensors") && contains(e, "File too large (errno 27)") &&
              contains(e, "file size limit (ulimit -f)") && !contains(e, "disk is full")) << e;
  // The earlier export's index and shards, the new shards and the temp file: all gone (its config.json stays).
  EXPECT_EQ(names_in(d / "out"), std::vector<std::string>{"config.json"});
  // Within the limit it works and reads back.
  write_hf_checkpoint(d / "out", {t[0], t[1]}, c, 4096);
  HfCheckpoint ck(d / "out");
  EXPECT_TRUE(at::equal(ck.read("b"), t[1].second));
}

TEST(HfCheckpointWriter, SafetensorsFullDiskRemovesThePartialFile) {
  WriterDir d;
  std::string e;
  {
    FileSizeLimit limit(4096);
    e = error_of([&] { write_safetensors(d / "big.safetensors", {{"w", at::ones({64, 64})}}); });
  }
  EXPECT_TRUE(contains(e, d / "big.safetensors") && contains(e, "File too large") &&
              contains(e, "partial file was removed")) << e;
  EXPECT_TRUE(names_in(d.path.string()).empty());
}

TEST(LlamaTensorShapes, EqualsParamSpecsWithoutAllocating) {
  for (LlamaConfig c : {cg::test::small_llama(), llama_flavor("tiny")}) {
    Llama m(c, TpShape{}, at::TensorOptions().dtype(at::kFloat));
    const auto specs = m->param_specs();
    const auto shapes = llama_tensor_shapes(c);
    ASSERT_EQ(shapes.size(), specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      EXPECT_EQ(shapes[i].first, specs[i].name) << i;
      EXPECT_EQ(shapes[i].second, specs[i].full_shape) << specs[i].name;
    }
  }
  // 70B by hand: GQA k/v (1024, 8192), MLP 28672; the count equals accounting's.
  const auto s70 = llama_tensor_shapes(llama_flavor("70b"));
  EXPECT_EQ(s70.size(), 2u + 9u * 80u + 1u);
  EXPECT_EQ(s70[2].first, "model.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(s70[2].second, (std::vector<int64_t>{1024, 8192}));
  EXPECT_EQ(s70[7].second, (std::vector<int64_t>{8192, 28672}));
  int64_t n = 0;
  for (const auto& [name, shape] : s70) n += c10::multiply_integers(shape);
  EXPECT_EQ(n, 68976648192);
}

TEST(LlamaTensorShapes, CheckHfTensorsNamesKeyAndShapes) {
  WriterDir d;
  const auto c = cg::test::small_llama();
  write_hf_checkpoint(d / "ok", model_tensors(c, at::kBFloat16), c, 16 * 1024);
  check_hf_tensors(HfCheckpoint(d / "ok"), llama_tensor_shapes(c));
  auto big = c;
  big.intermediate_size = 64;
  auto e = error_of([&] { check_hf_tensors(HfCheckpoint(d / "ok"), llama_tensor_shapes(big)); });
  EXPECT_TRUE(contains(e, "model.layers.0.mlp.gate_proj.weight has shape [48, 32] but the model expects [64, 32]"))
      << e;
  auto more = c;
  more.num_hidden_layers = 3;
  e = error_of([&] { check_hf_tensors(HfCheckpoint(d / "ok"), llama_tensor_shapes(more)); });
  EXPECT_TRUE(contains(e, "is missing model.layers.2.self_attn.q_proj.weight")) << e;
}
