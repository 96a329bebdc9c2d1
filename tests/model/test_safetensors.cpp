// Safetensors read/write (hand-made bytes for BF16/F16, round trips, row/column slices, truncation) and HF
// checkpoint folders (sharded + index, loading at tp 1 and tp-local shapes, bad checkpoints with clear errors).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/base_sample.h"
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

struct SafetensorsDir : cg::test::TempDir {
  SafetensorsDir() : cg::test::TempDir("cg_st") {}
};

// A file written byte by byte: header JSON + little-endian data, independent of write_safetensors.
void write_raw(const std::string& path, const std::string& header, const std::vector<uint8_t>& data) {
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header;
  out.write(reinterpret_cast<const char*>(data.data()), data.size());
}

std::vector<std::pair<std::string, at::Tensor>> full_tensors(const LlamaConfig& c, at::ScalarType dt, uint64_t seed) {
  Llama m(c, TpShape{}, at::TensorOptions().dtype(at::kFloat));
  init_weights(*m, seed, 0.1);
  std::vector<std::pair<std::string, at::Tensor>> t;
  for (const auto& s : m->param_specs()) t.emplace_back(s.name, s.param.detach().to(dt));
  return t;
}

}  // namespace

TEST(Safetensors, ReadsHandWrittenBf16AndF16) {
  SafetensorsDir d;
  // bf16: 1.0 = 0x3F80, -2.0 = 0xC000, 0.5 = 0x3F00, 3.0 = 0x4040.  f16: 1.0 = 0x3C00, -2.0 = 0xC000, 0.5 = 0x3800,
  // 65504 = 0x7BFF. Little endian.
  const std::string header = R"({"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F16","shape":[4],"data_offsets":[8,16]},"__metadata__":{"format":"pt"}})";
  write_raw(d / "x.safetensors", header,
            {0x80, 0x3F, 0x00, 0xC0, 0x00, 0x3F, 0x40, 0x40, 0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0xFF, 0x7B});
  SafetensorsFile f(d / "x.safetensors");
  EXPECT_EQ(f.keys(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.info("a").dtype, "BF16");
  const auto a = f.read("a");
  EXPECT_EQ(a.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(a.to(at::kFloat), torch::tensor({1.0f, -2.0f, 0.5f, 3.0f}).view({2, 2})));
  const auto b = f.read("b");
  EXPECT_EQ(b.scalar_type(), at::kHalf);
  EXPECT_TRUE(at::equal(b.to(at::kFloat), torch::tensor({1.0f, -2.0f, 0.5f, 65504.0f})));
  EXPECT_TRUE(at::equal(f.read_slice("a", 1, 1, 1).to(at::kFloat), torch::tensor({-2.0f, 3.0f}).view({2, 1})));
}

TEST(Safetensors, RoundTripEveryDtypeAndSlices) {
  SafetensorsDir d;
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto w = at::randn({5, 7}, g);
  std::vector<std::pair<std::string, at::Tensor>> ts = {
      {"f32", w}, {"bf16", w.to(at::kBFloat16)}, {"f16", w.to(at::kHalf)}, {"f64", w.to(at::kDouble)},
      {"i64", at::arange(6, at::kLong).view({2, 3})}, {"u8", at::arange(4, at::kByte)},
      {"cube", at::randn({3, 4, 5}, g)}, {"t_view", w.t()},  // a non-contiguous input
      {"empty", at::zeros({0, 3})}};  // no storage: data_ptr() is null (fuzzing found the memcpy from it)
  write_safetensors(d / "r.safetensors", ts, {{"k", "v"}});
  SafetensorsFile f(d / "r.safetensors");
  EXPECT_EQ(f.metadata().at("k"), "v");
  for (const auto& [n, t] : ts) {
    EXPECT_TRUE(at::equal(f.read(n), t)) << n;
    EXPECT_EQ(f.read(n).scalar_type(), t.scalar_type()) << n;
  }
  EXPECT_TRUE(at::equal(f.read_slice("bf16", 0, 1, 3), w.to(at::kBFloat16).narrow(0, 1, 3)));
  EXPECT_TRUE(at::equal(f.read_slice("bf16", 1, 2, 4), w.to(at::kBFloat16).narrow(1, 2, 4)));
  EXPECT_TRUE(at::equal(f.read_slice("cube", 1, 1, 2), ts[6].second.narrow(1, 1, 2)));
  EXPECT_EQ(f.read_slice("empty", 1, 1, 2).sizes(), at::IntArrayRef({0, 2}));
  EXPECT_TRUE(contains(error_of([&] { f.read_slice("f32", 1, 5, 3); }), "outside size 7"));
  EXPECT_TRUE(contains(error_of([&] { f.read("nope"); }), "has no tensor nope"));
}

TEST(Safetensors, TruncatedAndMalformedFilesAreClearErrors) {
  SafetensorsDir d;
  write_safetensors(d / "t.safetensors", {{"w", at::ones({64, 64})}});
  fs::resize_file(d / "t.safetensors", fs::file_size(d / "t.safetensors") - 100);
  const auto e = error_of([&] { SafetensorsFile f(d / "t.safetensors"); });
  EXPECT_TRUE(contains(e, "truncated") && contains(e, "tensor w")) << e;
  fs::resize_file(d / "t.safetensors", 20);
  EXPECT_TRUE(contains(error_of([&] { SafetensorsFile f(d / "t.safetensors"); }), "truncated"));
  write_raw(d / "bad.safetensors", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::vector<uint8_t>(8));
  EXPECT_TRUE(contains(error_of([&] { SafetensorsFile f(d / "bad.safetensors"); }), "needs 12"));
  EXPECT_TRUE(contains(error_of([&] { SafetensorsFile f(d / "missing.safetensors"); }), "cannot open"));
  // Malformed headers: each names the file (and the tensor), none escapes as a raw JSON or libtorch error.
  struct Case { std::string header, expect; };
  const std::vector<Case> cases = {
      {R"({"w":{"shape":[2],"data_offsets":[0,8]}})", "tensor w is malformed"},
      {R"([1,2,3])", "not a JSON object of tensors"},
      {R"({"__metadata__":{"format":7}})", "__metadata__ entry format is not a string"},
      {R"({"w":{"dtype":"F32","shape":[-1,-1],"data_offsets":[0,4]}})", "impossible shape"},
      {R"({"w":{"dtype":"F32","shape":[4611686018427387905,4],"data_offsets":[0,16]}})", "impossible shape"},
      // Numbers that are not whole: nlohmann would convert 1e30 to int64 (undefined), 2.5 to 2 and -8 to 2^64 - 8.
      {R"({"w":{"dtype":"F32","shape":[1e30],"data_offsets":[0,16]}})", "tensor w is malformed"},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16.0]}})", "tensor w is malformed"},
      {R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", "tensor w is malformed"},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[-8,8]}})", "tensor w is malformed"},
      {R"({"w":"F32"})", "tensor w is malformed"},
      // A name twice: JSON keeps the last one silently; the same entry repeated, or another one.
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
       "the header lists tensor w twice"},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
       "the header lists tensor w twice"},
  };
  for (const auto& c : cases) {
    write_raw(d / "m.safetensors", c.header, std::vector<uint8_t>(16));
    const auto err = error_of([&] { SafetensorsFile f(d / "m.safetensors"); });
    EXPECT_TRUE(contains(err, c.expect) && contains(err, "m.safetensors")) << c.header << " -> " << err;
  }
  // Data ranges must tile the data: two tensors reading the same bytes, a hole, or bytes after the last tensor.
  const std::vector<Case> layout = {
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
       "overlaps another tensor's or leaves a hole"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
       "tensor b starts at data byte 8 where the previous tensor ends (4)"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "8 bytes after the last tensor's data"},
  };
  for (const auto& c : layout) {
    write_raw(d / "m.safetensors", c.header, std::vector<uint8_t>(16));
    const auto err = error_of([&] { SafetensorsFile f(d / "m.safetensors"); });
    EXPECT_TRUE(contains(err, c.expect) && contains(err, "m.safetensors")) << c.header << " -> " << err;
  }
  // A Git LFS pointer (a clone without git-lfs) is named as such.
  std::ofstream(d / "lfs.safetensors") << "version https://git-lfs.github.com/spec/v1\noid sha256:"
                                          "4d7a0f9b\nsize 9976576152\n";
  EXPECT_TRUE(contains(error_of([&] { SafetensorsFile f(d / "lfs.safetensors"); }), "Git LFS pointer"));
  // An empty file (no tensors, no metadata) has the header {}, not null.
  write_safetensors(d / "empty.safetensors", {});
  std::ifstream in(d / "empty.safetensors", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(8, 2), "{}");
  EXPECT_TRUE(SafetensorsFile(d / "empty.safetensors").keys().empty());
}

TEST(HfCheckpoint, ShardedCheckpointLoadsAtTp1AndTpLocalShapes) {
  SafetensorsDir d;
  const auto c = cg::test::small_llama();
  auto full = full_tensors(c, at::kFloat, 5);
  full.emplace_back("model.layers.0.self_attn.rotary_emb.inv_freq", at::ones({4}));  // old checkpoints: ignored
  write_hf_checkpoint(d / "ck", full, c, /*max_shard_bytes=*/16 * 1024);
  HfCheckpoint ck(d / "ck");
  EXPECT_GT(ck.num_files(), 3u);
  EXPECT_TRUE(fs::exists(d / "ck/model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(d / "ck/model-00001-of-0000" + std::to_string(ck.num_files()) + ".safetensors"));
  EXPECT_TRUE(load_llama_config(d / "ck") == c);

  Llama m1(c, TpShape{}, at::TensorOptions().dtype(at::kFloat));
  load_hf_weights(*m1, d / "ck");
  const auto s1 = m1->param_specs();
  for (size_t i = 0; i < s1.size(); ++i) EXPECT_TRUE(at::equal(s1[i].param, full[i].second)) << s1[i].name;
  for (int r = 0; r < 2; ++r) {
    Llama m2(c, TpShape{r, 2}, at::TensorOptions().dtype(at::kFloat));
    load_hf_weights(*m2, d / "ck");
    for (const auto& s : m2->param_specs()) {
      const auto& want = std::find_if(full.begin(), full.end(), [&](auto& p) { return p.first == s.name; })->second;
      EXPECT_TRUE(at::equal(s.param, s.slice_of(want))) << s.name << " rank " << r;
    }
  }
  // Single-file layout for a large max_shard_bytes, loaded the same.
  write_hf_checkpoint(d / "one", full, c);
  EXPECT_TRUE(fs::exists(d / "one/model.safetensors"));
  EXPECT_EQ(HfCheckpoint(d / "one").num_files(), 1u);
}

namespace {

// Sets <dir>/config.json's tie_word_embeddings (write_hf_checkpoint writes false).
void set_tied(const std::string& dir, bool tied) {
  std::ifstream in(dir + "/config.json");
  nlohmann::json j = nlohmann::json::parse(in);
  j["tie_word_embeddings"] = tied;
  std::ofstream(dir + "/config.json") << j.dump(2);
}

// The tensors with lm_head.weight replaced by `head` (none: left out).
std::vector<std::pair<std::string, at::Tensor>> with_head(std::vector<std::pair<std::string, at::Tensor>> t,
                                                           const at::Tensor& head) {
  for (auto it = t.begin(); it != t.end(); ++it)
    if (it->first == "lm_head.weight") {
      if (head.defined()) it->second = head;
      else t.erase(it);
      break;
    }
  return t;
}

}  // namespace

// tie_word_embeddings true and no lm_head.weight (as transformers saves a tied model): lm_head is embed_tokens, so
// the model equals an untied checkpoint whose lm_head.weight is a copy of the embedding, at tp 1 (logits) and in
// every tp 2 rank's slices (the vocabulary padded 37 -> 38: the tied head's padding row zero, as embed_tokens').
// A stored lm_head.weight equal to embed_tokens is the same model; a different one is refused, as transformers
// would overwrite it silently.
TEST(HfCheckpoint, TiedEmbeddingsLoadAsAnUntiedCopy) {
  SafetensorsDir d;
  const auto c = cg::test::small_llama();
  const auto full = full_tensors(c, at::kBFloat16, 21);
  const at::Tensor embed = full.front().second;
  ASSERT_EQ(full.front().first, "model.embed_tokens.weight");
  write_hf_checkpoint(d / "untied", with_head(full, embed.clone()), c);
  write_hf_checkpoint(d / "tied", with_head(full, at::Tensor()), c, /*max_shard_bytes=*/8 * 1024);  // several files
  set_tied(d / "tied", true);
  const HfCheckpoint ck(d / "tied");
  EXPECT_TRUE(ck.tied());
  EXPECT_GT(ck.num_files(), 2u);
  EXPECT_TRUE(ck.contains("lm_head.weight"));
  EXPECT_TRUE(at::equal(ck.read("lm_head.weight"), embed));
  EXPECT_TRUE(at::equal(ck.read_slice("lm_head.weight", 0, 30, 7), embed.narrow(0, 30, 7)));
  EXPECT_FALSE(HfCheckpoint(d / "untied").tied());

  const at::Tensor tokens = at::tensor({3, 36, 0, 17, 9, 22}, at::kLong).view({2, 3});
  auto logits = [&](const std::string& dir) {
    Llama m(c, TpShape{}, at::TensorOptions().dtype(at::kFloat));
    load_hf_weights(*m, dir);
    at::NoGradGuard g;
    return m->forward(tokens);
  };
  const at::Tensor tied = logits(d / "tied"), untied = logits(d / "untied");
  EXPECT_TRUE(at::equal(tied, untied));
  write_hf_checkpoint(d / "own_head", full, c);  // the drawn lm_head: another model, other logits
  EXPECT_GT((logits(d / "own_head") - tied).abs().max().item<double>(), 1e-3);
  for (int r = 0; r < 2; ++r) {
    Llama t(c, TpShape{r, 2}, at::TensorOptions().dtype(at::kFloat)), u(c, TpShape{r, 2}, at::TensorOptions());
    load_hf_weights(*t, d / "tied");
    load_hf_weights(*u, d / "untied");
    const auto st = t->param_specs(), su = u->param_specs();
    for (size_t i = 0; i < st.size(); ++i) EXPECT_TRUE(at::equal(st[i].param, su[i].param)) << st[i].name << " " << r;
    EXPECT_TRUE(at::equal(st.back().param, st.front().slice_of(embed.to(at::kFloat)))) << "rank " << r;
  }
  // Not tied: a checkpoint without lm_head.weight is incomplete, as before.
  set_tied(d / "tied", false);
  EXPECT_FALSE(HfCheckpoint(d / "tied").tied());
  Llama m(c, TpShape{}, at::TensorOptions().dtype(at::kFloat));
  const std::string missing = error_of([&] { load_hf_weights(*m, d / "tied"); });
  EXPECT_TRUE(contains(missing, "is missing lm_head.weight")) << missing;
  EXPECT_TRUE(contains(missing, "set tie_word_embeddings to true in its config.json")) << missing;
  // Tied with lm_head.weight stored: equal to embed_tokens, the same model; different, refused naming the row.
  set_tied(d / "untied", true);
  EXPECT_FALSE(HfCheckpoint(d / "untied").tied());
  EXPECT_TRUE(at::equal(logits(d / "untied"), untied));
  at::Tensor other = embed.clone();
  other[5][2] = other[5][2].item<float>() + 1.0f;
  write_hf_checkpoint(d / "two", with_head(full, other), c);
  set_tied(d / "two", true);
  const std::string e = error_of([&] { HfCheckpoint ck2(d / "two"); });
  EXPECT_TRUE(contains(e, "tie_word_embeddings true, so transformers uses model.embed_tokens.weight as the output "
                          "layer and silently overwrites the stored lm_head.weight, which differs from it (first at "
                          "row 5)")) << e;
  EXPECT_TRUE(contains(e, "set tie_word_embeddings to false")) << e;
}

TEST(HfCheckpoint, Bf16AndF16CheckpointsCastToTheModelDtype) {
  SafetensorsDir d;
  const auto c = cg::test::small_llama();
  for (auto dt : {at::kBFloat16, at::kHalf}) {
    const auto full = full_tensors(c, dt, 9);
    write_hf_checkpoint(d / "ck", full, c, 40 * 1024);
    Llama m(c, TpShape{}, at::TensorOptions().dtype(at::kFloat));
    load_hf_weights(*m, d / "ck");
    const auto s = m->param_specs();
    for (size_t i = 0; i < s.size(); ++i) {
      EXPECT_EQ(s[i].param.scalar_type(), at::kFloat);
      EXPECT_TRUE(at::equal(s[i].param, full[i].second.to(at::kFloat))) << s[i].name;
    }
    fs::remove_all(d / "ck");
  }
}

// The base sample: values at flat positions 0, (n-1)/3, 2(n-1)/3, n-1 of every tensor, read from the file; one base
// wherever it is copied, sharded and in whichever float dtype; another base (other seed, a "fine-tune" changing one
// sampled value by a part in 10^4) is told apart, naming the tensor.
TEST(BaseSample, ValuesAtFixedPlacesTellBasesApart) {
  SafetensorsDir d;
  const auto c = cg::test::small_llama();
  auto full = full_tensors(c, at::kFloat, 5);
  write_hf_checkpoint(d / "base", full, c);
  const BaseSample s = sample_base(d / "base");
  ASSERT_EQ(s.tensors.size(), full.size());
  for (const auto& [name, t] : full) {
    const auto& v = s.tensors.at(name);
    EXPECT_EQ(v.dtype, "F32") << name;
    const at::Tensor flat = t.reshape({-1});
    const int64_t n = flat.numel();  // every tensor here has >= 4 values
    ASSERT_EQ(v.values.size(), 4u) << name;
    const int64_t at_[4] = {0, (n - 1) / 3, 2 * (n - 1) / 3, n - 1};
    for (int i = 0; i < 4; ++i) EXPECT_EQ(v.values[size_t(i)], flat[at_[i]].item<double>()) << name << " " << i;
  }
  // A one-value tensor gives one value; a one-element sample has nothing to space out.
  fs::create_directories(d / "one");
  write_safetensors(d / "one/model.safetensors", {{"w", at::full({1}, 2.5)}, {"ids", at::ones({3}, at::kLong)}});
  const BaseSample single = sample_base(d / "one");
  ASSERT_EQ(single.tensors.size(), 1u);  // integer tensors are no weights
  EXPECT_EQ(single.tensors.at("w").values, std::vector<double>{2.5});

  auto differ = [](const BaseSample& a, const BaseSample& b) { return base_sample_difference(a, b, "A", "B"); };
  // The same base sharded elsewhere (with an old checkpoint's rotary buffer, which is no weight), and in bf16 and
  // fp16: the same.
  auto with_buffer = full;
  with_buffer.emplace_back("model.layers.0.self_attn.rotary_emb.inv_freq", at::ones({4}));
  write_hf_checkpoint(d / "sharded", with_buffer, c, 16 * 1024);
  EXPECT_EQ(differ(s, sample_base(d / "sharded")), "");
  for (auto dt : {at::kBFloat16, at::kHalf}) {
    write_hf_checkpoint(d / "cast", full_tensors(c, dt, 5), c);
    const BaseSample cast = sample_base(d / "cast");
    EXPECT_EQ(cast.tensors.begin()->second.dtype, dt == at::kHalf ? "F16" : "BF16");
    EXPECT_EQ(differ(s, cast), "") << dt;
    EXPECT_EQ(differ(cast, s), "") << dt;
    fs::remove_all(d / "cast");
  }
  // Another seed: nearly every value differs.
  write_hf_checkpoint(d / "seed", full_tensors(c, at::kFloat, 6), c);
  const std::string seed = differ(s, sample_base(d / "seed"));
  EXPECT_TRUE(contains(seed, "sampled weight values differ, first ")) << seed;
  // One sampled value of one tensor moved by a part in 10^4: found, exactly, named; in bf16 that is below the
  // rounding, and so not told apart (documented).
  auto tuned = full;
  const std::string q = "model.layers.1.self_attn.q_proj.weight";
  for (auto& [name, t] : tuned)
    if (name == q) {
      t = t.clone();
      const int64_t n = t.numel();
      t.view({-1})[(n - 1) / 3] += 1e-4 * t.reshape({-1})[(n - 1) / 3].abs().item<double>() + 1e-7;
    }
  write_hf_checkpoint(d / "tuned", tuned, c);
  const std::string one = differ(s, sample_base(d / "tuned"));
  EXPECT_TRUE(contains(one, "1 of " + std::to_string(4 * full.size()) + " sampled weight values differ, first " + q +
                                "[sample 1]: ")) << one;
  EXPECT_TRUE(contains(one, "(F32) in A, ")) << one;
  EXPECT_TRUE(contains(one, "(F32) in B")) << one;
  // A tensor only one side has, and one of another size.
  BaseSample extra = s;
  extra.tensors["lm_head.weight"] = extra.tensors.at(q);
  if (s.tensors.count("lm_head.weight") == 0)
    EXPECT_EQ(differ(s, extra), "tensor lm_head.weight is in B only");
  BaseSample shorter = s;
  shorter.tensors.at(q).values.pop_back();
  EXPECT_TRUE(contains(differ(shorter, s), "tensor " + q + " has 3 sampled values in A, 4 in B")) << differ(shorter, s);

  // JSON round trip, exact (17 significant digits), NaN kept (as null).
  BaseSample nan = s;
  nan.tensors.at(q).values[0] = std::nan("");
  const BaseSample back = BaseSample::from_json(nan.to_json(), "test");
  EXPECT_EQ(differ(nan, back), "");
  EXPECT_TRUE(std::isnan(back.tensors.at(q).values[0]));
  EXPECT_EQ(back.tensors.at(q).values[1], s.tensors.at(q).values[1]);
  EXPECT_NE(differ(s, back), "");  // a NaN is not a number
  for (const std::string bad : {"", "[]", "{\"format\": 2, \"tensors\": {}}",
                                "{\"format\": 1, \"tensors\": {\"w\": {\"dtype\": \"F32\", \"values\": [\"x\"]}}}"})
    EXPECT_TRUE(contains(error_of([&] { BaseSample::from_json(bad, "f.json"); }), "f.json")) << bad;
}

TEST(HfCheckpoint, BadCheckpointsNameTheKeyAndShapes) {
  SafetensorsDir d;
  const auto c = cg::test::small_llama();
  auto full = full_tensors(c, at::kFloat, 1);
  Llama m(c, TpShape{}, at::TensorOptions().dtype(at::kFloat));

  auto missing = full;
  missing.erase(missing.begin() + 3);  // model.layers.0.self_attn.k_proj.weight
  write_hf_checkpoint(d / "missing", missing, c, 16 * 1024);
  auto e = error_of([&] { load_hf_weights(*m, d / "missing"); });
  EXPECT_TRUE(contains(e, "missing " + full[3].first)) << e;

  auto c_big = c;
  c_big.intermediate_size = 64;  // the model expects bigger MLP weights than the checkpoint has
  Llama m_big(c_big, TpShape{}, at::TensorOptions().dtype(at::kFloat));
  write_hf_checkpoint(d / "shape", full, c);
  e = error_of([&] { load_hf_weights(*m_big, d / "shape"); });
  EXPECT_TRUE(contains(e, "model.layers.0.mlp.gate_proj.weight has shape [48, 32] but the model expects [64, 32]"))
      << e;

  auto extra = full;
  extra.emplace_back("model.layers.9.mlp.up_proj.weight", at::zeros({2}));
  write_hf_checkpoint(d / "extra", extra, c);
  e = error_of([&] { load_hf_weights(*m, d / "extra"); });
  EXPECT_TRUE(contains(e, "unexpected") && contains(e, "model.layers.9.mlp.up_proj.weight")) << e;

  write_hf_checkpoint(d / "lost", full, c, 16 * 1024);
  fs::remove(d / "lost/model-00002-of-0000" + std::to_string(HfCheckpoint(d / "lost").num_files()) + ".safetensors");
  e = error_of([&] { HfCheckpoint ck(d / "lost"); });
  EXPECT_TRUE(contains(e, "missing")) << e;

  write_hf_checkpoint(d / "trunc", full, c);
  fs::resize_file(d / "trunc/model.safetensors", fs::file_size(d / "trunc/model.safetensors") - 10);
  e = error_of([&] { load_hf_weights(*m, d / "trunc"); });
  EXPECT_TRUE(contains(e, "truncated") && contains(e, "lm_head.weight")) << e;

  e = error_of([&] { load_hf_weights(*m, d / "nothing_here"); });
  EXPECT_TRUE(contains(e, "does not exist")) << e;
  std::ofstream(d / "a_file") << "x";
  e = error_of([&] { HfCheckpoint ck(d / "a_file"); });
  EXPECT_TRUE(contains(e, "is a file, not a folder")) << e;

  // One file whose name is a link to nowhere, or a folder.
  write_hf_checkpoint(d / "dangling", full, c);
  fs::remove(d / "dangling/model.safetensors");
  fs::create_symlink(d / "elsewhere.safetensors", d / "dangling/model.safetensors");
  e = error_of([&] { HfCheckpoint ck(d / "dangling"); });
  EXPECT_TRUE(contains(e, "model.safetensors is missing (a link to nowhere?)")) << e;
  fs::remove(d / "dangling/model.safetensors");
  fs::create_directories(d / "dangling/model.safetensors");
  e = error_of([&] { HfCheckpoint ck(d / "dangling"); });
  EXPECT_TRUE(contains(e, "model.safetensors is not a file")) << e;

  // A config.json of a far bigger model is refused from the headers, before any allocation: layers, then shapes.
  auto huge = c;
  huge.num_hidden_layers = int64_t{1} << 40;
  write_hf_checkpoint(d / "single0", full, c);
  e = error_of([&] { check_hf_folder_fits(HfCheckpoint(d / "single0"), huge); });
  EXPECT_TRUE(contains(e, "config.json says num_hidden_layers 1099511627776 but the weights in " +
                              d / "single0" + " hold " + std::to_string(c.num_hidden_layers) + " layers"))
      << e;
  huge = c;
  huge.intermediate_size = 1000000000;
  e = error_of([&] { check_hf_folder_fits(HfCheckpoint(d / "single0"), huge); });
  EXPECT_TRUE(contains(e, "model.layers.0.mlp.gate_proj.weight has shape [48, 32] but the model expects "
                          "[1000000000, 32]")) << e;
  EXPECT_EQ(error_of([&] { check_hf_folder_fits(HfCheckpoint(d / "single0"), c); }), "<no error>");

  // An index beside a single model.safetensors: transformers would read the single file, this the shards.
  write_hf_checkpoint(d / "both", full, c, 16 * 1024);
  write_hf_checkpoint(d / "single", full, c);
  fs::copy_file(d / "single/model.safetensors", d / "both/model.safetensors");
  e = error_of([&] { HfCheckpoint ck(d / "both"); });
  EXPECT_TRUE(contains(e, "holds both model.safetensors and model.safetensors.index.json")) << e;

  // A PEFT adapter beside the weights would be ignored: refused, saying where adapters go.
  std::ofstream(d / "single/adapter_config.json") << "{}";
  e = error_of([&] { HfCheckpoint ck(d / "single"); });
  EXPECT_TRUE(contains(e, "holds a PEFT adapter (adapter_config.json) that would not be applied")) << e;
  EXPECT_TRUE(contains(e, "lora.init_adapter (cgtrain) or sample.adapter (cgsample)")) << e;

  // Integer tensors (a quantized export) are refused, not cast to float bit pattern by bit pattern.
  auto quantized = full;
  quantized[1].second = quantized[1].second.to(at::kInt);
  write_hf_checkpoint(d / "int", quantized, c);
  e = error_of([&] { load_hf_weights(*m, d / "int"); });
  EXPECT_TRUE(contains(e, quantized[1].first + " is stored as I32, not as floating point")) << e;

  // A malformed index names itself and the entry.
  write_hf_checkpoint(d / "index", full, c, 16 * 1024);
  std::ofstream(d / "index/model.safetensors.index.json") << R"({"weight_map":{"lm_head.weight":3}})";
  e = error_of([&] { HfCheckpoint ck(d / "index"); });
  EXPECT_TRUE(contains(e, "model.safetensors.index.json: weight_map entry lm_head.weight is 3")) << e;
  std::ofstream(d / "index/model.safetensors.index.json") << R"({"weight_map":["a"]})";
  e = error_of([&] { HfCheckpoint ck(d / "index"); });
  EXPECT_TRUE(contains(e, "has no weight_map object")) << e;
  // An index that lists none of a shard of its set (model-00002-of-N beside model-00001-of-N): the index is
  // named as incomplete, not config.json blamed for the layers it leaves out.
  write_hf_checkpoint(d / "orphan", full, c, 16 * 1024);
  {
    auto idx = nlohmann::json::parse(std::ifstream(d / "orphan/model.safetensors.index.json"));
    const std::string last = idx["weight_map"]["lm_head.weight"];
    ASSERT_NE(last, "model-00001-of-00002.safetensors");
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end();)
      it = *it == last ? idx["weight_map"].erase(it) : std::next(it);
    std::ofstream(d / "orphan/model.safetensors.index.json") << idx.dump();
    e = error_of([&] { HfCheckpoint ck(d / "orphan"); });
    EXPECT_TRUE(contains(e, last + " is in the folder but model.safetensors.index.json lists none of its tensors: "
                         "the index is incomplete")) << e;
    // A file of another set (another shard count) is no part of this one: not in the way.
    fs::rename(d / ("orphan/" + last), d / "orphan/model-00001-of-00099.safetensors");
    EXPECT_EQ(error_of([&] { HfCheckpoint ck(d / "orphan"); }), "<no error>");
  }
  // Shard names are files of the folder, not paths out of it.
  for (const char* file : {"../model-00001-of-00002.safetensors", "/etc/passwd", "", ".."}) {
    std::ofstream(d / "index/model.safetensors.index.json")
        << nlohmann::json{{"weight_map", {{"lm_head.weight", file}}}}.dump();
    e = error_of([&] { HfCheckpoint ck(d / "index"); });
    EXPECT_TRUE(contains(e, std::string("weight_map entry lm_head.weight names \"") + file +
                                "\", not a file of this folder")) << e;
  }
}

TEST(LlamaConfigJson, ReadsHfConfigsAndRoundTrips) {
  // A LLaMA-2-7B style config.json without num_key_value_heads and with rms_norm_eps 1e-6.
  const auto c = llama_config_from_json(R"({"architectures":["LlamaForCausalLM"],"model_type":"llama",
    "hidden_size":4096,"intermediate_size":11008,"num_attention_heads":32,"num_hidden_layers":32,
    "rms_norm_eps":1e-06,"vocab_size":32000,"max_position_embeddings":4096,"torch_dtype":"float16"})");
  EXPECT_EQ(c.num_key_value_heads, 32);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.head_dim(), 128);
  EXPECT_TRUE(llama_config_from_json(c.to_hf_json()) == c);
  const auto f70 = llama_flavor("70b");
  EXPECT_TRUE(llama_config_from_json(f70.to_hf_json()) == f70);
  EXPECT_EQ(f70.num_key_value_heads, 8);
  EXPECT_EQ(llama_flavor("tiny", 300).vocab_size, 300);
  EXPECT_TRUE(contains(error_of([] { llama_flavor("3b"); }), "tiny, 7b, 13b or 70b"));
  EXPECT_TRUE(contains(error_of([] { llama_config_from_json(R"({"hidden_size":64})"); }), "intermediate_size"));
  EXPECT_TRUE(contains(error_of([] {
                         llama_config_from_json(R"({"hidden_size":64,"intermediate_size":8,"num_attention_heads":6,
                           "num_hidden_layers":1,"vocab_size":10})");
                       }),
                       "hidden_size 64 is not divisible by num_attention_heads 6"));
  // Settings that would change the model are refused by name, wrong types name the key, null means the default.
  const std::string head = R"({"hidden_size":64,"intermediate_size":96,"num_attention_heads":4,"num_hidden_layers":1,
                              "vocab_size":10)";
  auto read = [&](const std::string& more) { return llama_config_from_json(head + more + "}"); };
  EXPECT_TRUE(contains(error_of([&] { read(R"(,"num_key_value_heads":0)"); }),
                       "num_attention_heads 4 and num_key_value_heads 0 must be positive"));
  EXPECT_TRUE(contains(error_of([&] { llama_config_from_json(R"({"hidden_size":64,"intermediate_size":96,
      "num_attention_heads":4,"num_hidden_layers":9223372036854775808,"vocab_size":10})"); }),
                       "\"num_hidden_layers\" is 9223372036854775808, far beyond any model"));
  EXPECT_EQ(read(R"(,"rms_norm_eps":null,"tie_word_embeddings":null,"hidden_act":"silu","head_dim":16)").rms_norm_eps,
            1e-6);
  EXPECT_EQ(read(R"(,"rope_scaling":{"rope_type":"default"})").rope_theta, 10000.0);
  // transformers' LlamaConfig defaults where config.json says nothing (train.seq_len is checked against the positions).
  EXPECT_EQ(read("").max_position_embeddings, 2048);
  EXPECT_EQ(read("").num_key_value_heads, 4);
  // Tied embeddings are the same architecture (HfCheckpoint ties the weights as transformers does).
  EXPECT_TRUE(read(R"(,"tie_word_embeddings":true)") == read(""));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"(,"hidden_act":"gelu")", "hidden_act \"gelu\" is not supported"},
      {R"(,"head_dim":32)", "head_dim 32 is not hidden_size / num_attention_heads = 16"},
      // head_dim * heads overflows int64 (undefined behaviour before the check was overflow-safe; fuzzing corpus)
      {R"(,"head_dim":4611686018427387904)", "head_dim 4611686018427387904 is not hidden_size"},
      {R"(,"rope_theta":0)", "rope_theta 0"},
      {R"(,"rms_norm_eps":-1)", "must be positive"},
      {R"(,"max_position_embeddings":0)", "must be positive"},
      {R"(,"hidden_size":64.9)", "\"hidden_size\" is 64.9, not an integer"},
      {R"(,"rms_norm_eps":"small")", "\"rms_norm_eps\" is \"small\", not a number"},
      {R"(,"rope_scaling":{"type":"linear","factor":2.0})", "rope_scaling"},
      // Each refusal says what to do.
      {R"(,"rope_scaling":{"rope_type":"llama3","factor":8.0})", "give a base without rope_scaling"},
      {R"(,"tie_word_embeddings":"yes")", "\"tie_word_embeddings\" is \"yes\", not true or false"},
      {R"(,"attention_bias":true)", "attention_bias true is not supported"},
      {R"(,"rope_scaling":{"rope_type":1})", "rope_scaling {\"rope_type\":1} is not supported"},
  };
  for (const auto& [more, expect] : bad) {
    const auto err = error_of([&] { read(more); });
    EXPECT_TRUE(contains(err, expect)) << more << " -> " << err;
  }
}

TEST(LlamaConfig, BaseFolderMustDescribeTheExpectedModel) {
  // A base whose tensors have the run's shapes but whose config.json says otherwise (another RoPE base, another
  // eps) is another model: refused naming each differing field; an unsupported setting there is refused as such.
  const std::string dir = testing::TempDir() + "/check_hf_config";
  std::filesystem::create_directories(dir);
  const LlamaConfig tiny = llama_flavor("tiny");
  std::ofstream(dir + "/config.json") << tiny.to_hf_json();
  EXPECT_NO_THROW(check_hf_config(dir, tiny, "the run's model_config.json"));
  LlamaConfig other = tiny;
  other.rope_theta = 1e6;
  other.num_key_value_heads = 8;
  other.vocab_size = 600;     // another vocabulary: another model
  other.rms_norm_eps = 1e-6;  // revised on the Hub for the same weights: not a reason to refuse
  std::ofstream(dir + "/config.json") << other.to_hf_json();
  const std::string err = error_of([&] { check_hf_config(dir, tiny, "the run's model_config.json"); });
  EXPECT_TRUE(contains(err, dir + "/config.json does not describe the model of the run's model_config.json")) << err;
  EXPECT_TRUE(contains(err, "num_key_value_heads 8 there, 4 in the run's model_config.json")) << err;
  EXPECT_TRUE(contains(err, "rope_theta 1000000 there, 10000 in the run's model_config.json")) << err;
  EXPECT_TRUE(contains(err, "vocab_size 600 there, 512 in the run's model_config.json")) << err;
  EXPECT_FALSE(contains(err, "rms_norm_eps")) << err;
  EXPECT_FALSE(contains(err, "hidden_size")) << err;
  other = tiny;
  other.rms_norm_eps = 1e-6;
  other.max_position_embeddings = 2048;
  std::ofstream(dir + "/config.json") << other.to_hf_json();
  EXPECT_NO_THROW(check_hf_config(dir, tiny, "the run's model_config.json"));
  std::filesystem::remove(dir + "/config.json");  // nothing says which model the weights are: refused
  EXPECT_TRUE(contains(error_of([&] { check_hf_config(dir, tiny, "the run's model_config.json"); }),
                       "has no config.json, so nothing says it is the model of the run's model_config.json"));
  // ... and read as a base, not replaced by the flavor's settings.
  EXPECT_TRUE(contains(error_of([&] { resolve_llama_config("tiny", dir); }), "model.hf_dir " + dir +
                                                                              " has no config.json"));
  EXPECT_TRUE(contains(error_of([&] { resolve_llama_config("tiny", dir); }), "copy the model's config.json there"));
  // The likely mix-ups are named instead: a PEFT adapter folder, a cgtrain step or run folder given as the base.
  std::ofstream(dir + "/adapter_config.json") << "{}";
  for (const std::string& err : {error_of([&] { check_hf_config(dir, tiny, "x"); }),
                                 error_of([&] { resolve_llama_config("tiny", dir); }),
                                 error_of([&] { load_llama_config(dir); })}) {
    EXPECT_TRUE(contains(err, "it is a PEFT adapter folder (adapter_config.json), not a base model: give it as "
                              "sample.adapter")) << err;
    EXPECT_FALSE(contains(err, "copy the model's config.json")) << err;
  }
  std::filesystem::remove(dir + "/adapter_config.json");
  std::ofstream(dir + "/manifest.json") << "{}";
  EXPECT_TRUE(contains(error_of([&] { resolve_llama_config("tiny", dir); }),
                       "it is a cgtrain run or checkpoint folder, not a base model")) << dir;
  std::filesystem::remove(dir + "/manifest.json");
  EXPECT_EQ(resolve_llama_config("tiny", ""), llama_flavor("tiny"));
  // A path through a file (a trailing slash, a folder inside an archive) is no folder still to come either: refused,
  // naming the file (exists() calls such a path missing); a path through a missing folder is the flavor.
  std::ofstream(dir + "/model.tar") << "x";
  for (const std::string& p : {dir + "/model.tar/", dir + "/model.tar/Llama-2-7b-hf"})
    EXPECT_TRUE(contains(error_of([&] { resolve_llama_config("tiny", p); }), "model.hf_dir " + p + " is in " + dir +
                         "/model.tar, which is a file, not a folder: set model.hf_dir to the Hugging Face")) << p;
  EXPECT_TRUE(contains(error_of([&] { resolve_llama_config("tiny", dir + "/model.tar"); }), "model.hf_dir " + dir +
                       "/model.tar is a file, not a folder"));
  EXPECT_EQ(resolve_llama_config("tiny", dir + "/not_here/Llama-2-7b-hf"), llama_flavor("tiny"));
  std::filesystem::remove(dir + "/model.tar");
  auto j = nlohmann::json::parse(tiny.to_hf_json());
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  std::ofstream(dir + "/config.json") << j.dump();
  EXPECT_TRUE(contains(error_of([&] { check_hf_config(dir, tiny, "x"); }), "rope_scaling"));
  // A broken config.json is named by its path (and the field), whichever reader meets it first.
  const std::string path = dir + "/config.json";
  std::ofstream(path) << tiny.to_hf_json().substr(0, 40);  // cut off
  for (const std::string& err : {error_of([&] { check_hf_config(dir, tiny, "x"); }),
                                 error_of([&] { resolve_llama_config("tiny", dir); }),
                                 error_of([&] { load_llama_config(dir); })})
    EXPECT_TRUE(contains(err, path + " is not valid JSON: ")) << err;
  j = nlohmann::json::parse(tiny.to_hf_json());
  j["hidden_size"] = "256";
  std::ofstream(path) << j.dump();
  EXPECT_TRUE(contains(error_of([&] { resolve_llama_config("tiny", dir); }),
                       path + ": \"hidden_size\" is \"256\", not an integer; correct it to the model's own"));
  j = nlohmann::json::parse(tiny.to_hf_json());
  j["rms_norm_eps"] = "1e-5";
  std::ofstream(path) << j.dump();
  EXPECT_TRUE(contains(error_of([&] { load_llama_config(dir); }), path + ": \"rms_norm_eps\" is \"1e-5\", not a "
                                                                         "number"));
  j = nlohmann::json::parse(tiny.to_hf_json());
  j["num_key_value_heads"] = 3;  // valid JSON, values that do not make a model
  std::ofstream(path) << j.dump();
  EXPECT_TRUE(contains(error_of([&] { load_llama_config(dir); }), path + ": LLaMA config: num_attention_heads 8 is "
                                                                         "not divisible by num_key_value_heads 3"));
}
