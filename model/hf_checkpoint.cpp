#include "model/hf_checkpoint.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/folder_kind.h"
#include "common/log.h"
#include "model/llama.h"

namespace fs = std::filesystem;

namespace cg::model {

namespace {

// A shard of the same set as those the index names (model-0000i-of-0000N, the same N) that it lists no tensor of:
// the index is incomplete (a download or copy cut short), and its layers would be missing, blamed on config.json.
void check_index_lists_every_shard(const std::string& dir, const std::set<std::string>& listed) {
  static const std::regex shard(R"(model-[0-9]{5}-of-([0-9]{5})\.safetensors)");
  std::set<std::string> totals;
  std::smatch m;
  for (const auto& f : listed)
    if (std::regex_match(f, m, shard)) totals.insert(m[1].str());
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string f = e.path().filename().string();
    CG_CHECK(listed.count(f) || !std::regex_match(f, m, shard) || !totals.count(m[1].str()), "{}: {} is in the folder "
             "but model.safetensors.index.json lists none of its tensors: the index is incomplete (a download or "
             "copy cut short?); fetch the model's model.safetensors.index.json again", dir, f);
  }
}

}  // namespace

HfCheckpoint::HfCheckpoint(const std::string& dir) : dir_(dir) {
  CG_CHECK(fs::is_directory(dir), "checkpoint folder {} {} (model.hf_dir): set model.hf_dir to the Hugging Face "
           "checkpoint folder (its config.json and *.safetensors)", dir,
           fs::exists(dir) ? "is a file, not a folder" : "does not exist");
  check_no_unfinished_export(dir, "checkpoint folder");
  CG_CHECK(!is_peft_adapter_folder(dir), "{} holds a PEFT adapter (adapter_config.json) that "
           "would not be applied: give its base model as model.hf_dir, and the adapter as lora.init_adapter (cgtrain) "
           "or sample.adapter (cgsample)", dir);
  const auto index = fs::path(dir) / "model.safetensors.index.json";
  // transformers reads model.safetensors when there is one and ignores the index: two sets of weights in one folder
  // would load differently there and here.
  CG_CHECK(!(fs::exists(index) && fs::exists(fs::path(dir) / "model.safetensors")), "{} holds both model.safetensors "
           "and model.safetensors.index.json (sharded weights): transformers would load model.safetensors, cgtrain "
           "the shards; remove whichever is stale", dir);
  std::vector<std::pair<std::string, std::string>> expected;  // (key, file) from the index
  std::vector<std::string> names;
  if (fs::exists(index)) {
    const std::string text = read_file(index.string(), "weight index");  // a folder there: said so, not "not JSON"
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      CG_FAIL("{} is not valid JSON: {}", index.string(), e.what());
    }
    CG_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), "{} has no weight_map object "
             "(tensor name -> shard file name)", index.string());
    std::set<std::string> files;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      CG_CHECK(it->is_string(), "{}: weight_map entry {} is {}, not a shard file name", index.string(), it.key(),
               it->dump());
      const std::string file = it->get<std::string>();
      CG_CHECK(!file.empty() && file.find('/') == std::string::npos && file != "." && file != "..",
               "{}: weight_map entry {} names \"{}\", not a file of this folder", index.string(), it.key(), file);
      files.insert(file);
      expected.emplace_back(it.key(), file);
    }
    names.assign(files.begin(), files.end());
    check_index_lists_every_shard(dir, files);
  } else if (fs::exists(fs::path(dir) / "model.safetensors")) {
    names.push_back("model.safetensors");
  } else {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") names.push_back(e.path().filename().string());
    const bool bin = fs::exists(fs::path(dir) / "pytorch_model.bin") ||
                     fs::exists(fs::path(dir) / "pytorch_model.bin.index.json");
    CG_CHECK(names.size() == 1, "{} has no model.safetensors.index.json and {} *.safetensors files; expected an index "
             "or exactly one file{}", dir, names.size(), bin ? " (it has pytorch_model.bin weights: convert them to "
             "safetensors, e.g. in Python AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(OUT, "
             "safe_serialization=True))" : "");
  }
  std::map<std::string, const SafetensorsFile*> by_file;
  for (const auto& n : names) {
    const auto p = fs::path(dir) / n;
    CG_CHECK(fs::exists(p), "{}: {} is missing{}", dir, n, expected.empty() ? " (a link to nowhere?)"
                                                                              : ", though the index names it");
    CG_CHECK(fs::is_regular_file(p), "{}: {} is not a file", dir, n);
    files_.push_back(std::make_unique<SafetensorsFile>(p.string()));
    by_file[n] = files_.back().get();
    for (const auto& k : files_.back()->keys()) {
      CG_CHECK(!where_.count(k), "{}: tensor {} is in two shards ({} and {})", dir, k, where_[k]->path(), n);
      where_[k] = files_.back().get();
    }
  }
  for (const auto& [key, f] : expected)
    CG_CHECK(by_file.at(f)->contains(key), "{}: the index puts {} in {} but that shard does not hold it", dir, key, f);
  if (hf_ties_word_embeddings(dir)) tie_word_embeddings();
}

void HfCheckpoint::tie_word_embeddings() {
  const std::string embed = "model.embed_tokens.weight", head = "lm_head.weight";
  if (!contains(embed)) return;  // missing: check_hf_tensors names it
  if (!contains(head)) {
    alias_[head] = embed;
    where_[head] = where_.at(embed);
    return;
  }
  // Both stored: transformers ties them anyway (lm_head takes embed_tokens' matrix). Equal (save_pretrained of a tied
  // model may write both), the same model either way; different, the folder is two models in one.
  const TensorInfo &e = info(embed), &h = info(head);
  CG_CHECK(e.shape == h.shape, "{}: config.json has tie_word_embeddings true, but lm_head.weight {} and "
           "model.embed_tokens.weight {} differ in shape; set tie_word_embeddings to false if lm_head.weight is the "
           "model's output layer", dir_, c10::str(at::IntArrayRef(h.shape)), c10::str(at::IntArrayRef(e.shape)));
  const int64_t rows = e.shape.empty() ? 0 : e.shape[0], chunk = 4096;  // a few MB at a time, not two whole tables
  for (int64_t r = 0; r < rows; r += chunk) {
    const int64_t n = std::min(chunk, rows - r);
    const at::Tensor a = read_slice(embed, 0, r, n), b = read_slice(head, 0, r, n);
    const at::Tensor same = (a.to(at::kFloat) == b.to(at::kFloat)).flatten(1).all(1);
    if (same.all().item<bool>()) continue;
    const int64_t row = r + (~same).nonzero()[0][0].item<int64_t>();
    CG_FAIL("{}: config.json has tie_word_embeddings true, so transformers uses model.embed_tokens.weight as the "
            "output layer and silently overwrites the stored lm_head.weight, which differs from it (first at row {}): "
            "the folder holds two models. If lm_head.weight is the trained output layer, set tie_word_embeddings to "
            "false in {}/config.json; if the model is meant tied, remove lm_head.weight (save it again with "
            "transformers' save_pretrained)", dir_, row, dir_);
  }
}

const std::string& HfCheckpoint::stored(const std::string& name) const {
  auto it = alias_.find(name);
  return it == alias_.end() ? name : it->second;
}

std::vector<std::string> HfCheckpoint::keys() const {
  std::vector<std::string> k;
  for (const auto& [name, _] : where_) k.push_back(name);
  return k;
}

const SafetensorsFile& HfCheckpoint::file(const std::string& name) const {
  auto it = where_.find(name);
  CG_CHECK(it != where_.end(), "checkpoint {} has no tensor {}", dir_, name);
  return *it->second;
}

std::string hf_dtype_name(at::ScalarType dtype) {
  if (dtype == at::kFloat) return "float32";
  if (dtype == at::kHalf) return "float16";
  if (dtype == at::kBFloat16) return "bfloat16";
  CG_FAIL("no Hugging Face LLaMA checkpoint holds {} weights (float32, float16 or bfloat16)", c10::toString(dtype));
}

std::vector<HfShard> plan_hf_shards(const std::vector<TensorEntry>& tensors, int64_t max_shard_bytes) {
  std::vector<HfShard> shards(1);
  for (const auto& e : tensors) {
    const uint64_t bytes = e.bytes();
    if (!shards.back().tensors.empty() && shards.back().bytes + bytes > static_cast<uint64_t>(max_shard_bytes))
      shards.emplace_back();
    shards.back().tensors.push_back(e);
    shards.back().bytes += bytes;
  }
  for (size_t i = 0; i < shards.size(); ++i)
    shards[i].file = shards.size() == 1 ? "model.safetensors"
                                        : fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
  return shards;
}

namespace {

const std::map<std::string, std::string> kShardMeta = {{"format", "pt"}};

// text -> path.tmp -> fsync -> path; errors name the file.
void write_text_file(const fs::path& path, const std::string& text) { write_file_atomic(path.string(), text); }

}  // namespace

HfCheckpointWriter::HfCheckpointWriter(const std::string& dir, std::vector<TensorEntry> tensors,
                                       const LlamaConfig& config, int64_t max_shard_bytes)
    : dir_(dir), config_(config), shards_(plan_hf_shards(tensors, max_shard_bytes)) {
  std::set<std::string> names;
  for (const auto& e : tensors) CG_CHECK(names.insert(e.name).second, "{}: tensor {} given twice", dir, e.name);
  fs::create_directories(dir);
  // An earlier export's weights (maybe another shard count) must not mix with these: index first, then shards.
  fs::remove(fs::path(dir) / "model.safetensors.index.json");
  static const std::regex weights(
      R"(model(-[0-9]{5}-of-[0-9]{5})?\.safetensors(\.tmp)?|model\.safetensors\.index\.json\.tmp)");
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && std::regex_match(e.path().filename().string(), weights)) fs::remove(e.path());
}

HfCheckpointWriter::~HfCheckpointWriter() {
  if (!finished_) remove_outputs();
}

void HfCheckpointWriter::remove_outputs() {
  cur_.reset();  // removes its temp file
  std::error_code ec;
  for (const auto& p : completed_) fs::remove(p, ec);
  completed_.clear();
}

SafetensorsWriter& HfCheckpointWriter::shard_writer() {
  if (!cur_) {
    const HfShard& s = shards_[shard_];
    cur_ = std::make_unique<SafetensorsWriter>((fs::path(dir_) / s.file).string(), s.tensors, kShardMeta);
  }
  return *cur_;
}

void HfCheckpointWriter::close_shard() {
  shard_writer().finish();
  completed_.push_back(cur_->path());
  cur_.reset();
  ++shard_, in_shard_ = 0;
}

void HfCheckpointWriter::write(const std::string& name, const at::Tensor& t) {
  try {
    CG_CHECK(!finished_, "{}: write({}) after finish", dir_, name);
    CG_CHECK(shard_ < shards_.size(), "{}: tensor {} is beyond the planned ones", dir_, name);
    shard_writer().write(name, t);
    if (++in_shard_ == shards_[shard_].tensors.size()) close_shard();  // complete: into place now
  } catch (...) {
    remove_outputs();
    throw;
  }
}

void HfCheckpointWriter::finish() {
  try {
    CG_CHECK(!finished_, "{}: finish twice", dir_);
    while (shard_ < shards_.size()) {  // only an empty plan's one shard is left here
      CG_CHECK(in_shard_ == shards_[shard_].tensors.size(), "{}: finish before tensor {} was written", dir_,
               shards_[shard_].tensors[in_shard_].name);
      close_shard();
    }
    // torch_dtype: the tensors' (transformers' torch_dtype="auto" loads in it rather than in the weights' dtype);
    // with several (bf16 matrices beside fp32 norms), the one most of the bytes have, whatever the order.
    std::map<at::ScalarType, uint64_t> bytes;
    for (const auto& sh : shards_)
      for (const auto& t : sh.tensors) bytes[t.dtype] += t.bytes();
    at::ScalarType dt = at::kBFloat16;  // no tensors: the LLaMA default
    uint64_t most = 0;
    for (const auto& [d, n] : bytes)
      if (n > most) dt = d, most = n;
    write_text_file(fs::path(dir_) / "config.json", config_.to_hf_json(hf_dtype_name(dt)));
    completed_.push_back((fs::path(dir_) / "config.json").string());
    if (shards_.size() > 1) {  // the index last: its presence says every shard is complete
      uint64_t total = 0;
      nlohmann::ordered_json map = nlohmann::ordered_json::object();
      for (const auto& s : shards_) {
        total += s.bytes;
        for (const auto& e : s.tensors) map[e.name] = s.file;
      }
      nlohmann::ordered_json index;
      index["metadata"] = {{"total_size", static_cast<int64_t>(total)}};
      index["weight_map"] = map;
      write_text_file(fs::path(dir_) / "model.safetensors.index.json", index.dump(2) + "\n");
    }
    finished_ = true;
  } catch (...) {
    remove_outputs();
    throw;
  }
}

void write_hf_checkpoint(const std::string& dir, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                         const LlamaConfig& config, int64_t max_shard_bytes) {
  std::vector<TensorEntry> plan;
  for (const auto& [name, t] : tensors) plan.push_back({name, t.scalar_type(), t.sizes().vec()});
  HfCheckpointWriter w(dir, std::move(plan), config, max_shard_bytes);
  for (const auto& [name, t] : tensors) w.write(name, t);
  w.finish();
}

NamedShapes llama_tensor_shapes(const LlamaConfig& c) {
  const int64_t d = c.hidden_size, kv = c.num_key_value_heads * c.head_dim(), I = c.intermediate_size;
  NamedShapes s;
  s.emplace_back("model.embed_tokens.weight", std::vector<int64_t>{c.vocab_size, d});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i);
    s.emplace_back(p + ".self_attn.q_proj.weight", std::vector<int64_t>{d, d});
    s.emplace_back(p + ".self_attn.k_proj.weight", std::vector<int64_t>{kv, d});
    s.emplace_back(p + ".self_attn.v_proj.weight", std::vector<int64_t>{kv, d});
    s.emplace_back(p + ".self_attn.o_proj.weight", std::vector<int64_t>{d, d});
    s.emplace_back(p + ".mlp.gate_proj.weight", std::vector<int64_t>{I, d});
    s.emplace_back(p + ".mlp.up_proj.weight", std::vector<int64_t>{I, d});
    s.emplace_back(p + ".mlp.down_proj.weight", std::vector<int64_t>{d, I});
    s.emplace_back(p + ".input_layernorm.weight", std::vector<int64_t>{d});
    s.emplace_back(p + ".post_attention_layernorm.weight", std::vector<int64_t>{d});
  }
  s.emplace_back("model.norm.weight", std::vector<int64_t>{d});
  s.emplace_back("lm_head.weight", std::vector<int64_t>{c.vocab_size, d});
  return s;
}

bool hf_buffer_key(const std::string& k) {
  const std::string suffix = "rotary_emb.inv_freq";
  return k.size() >= suffix.size() && k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void check_hf_tensors(const HfCheckpoint& ckpt, const NamedShapes& expected) {
  const std::string& dir = ckpt.dir();
  std::set<std::string> wanted;
  for (const auto& e : expected) wanted.insert(e.first);
  std::vector<std::string> unexpected;
  for (const auto& k : ckpt.keys())
    if (!wanted.count(k) && !hf_buffer_key(k)) unexpected.push_back(k);
  CG_CHECK(unexpected.empty(), "checkpoint {} has {} unexpected tensors, e.g. {} (is it a LLaMA checkpoint matching "
           "config.json?)", dir, unexpected.size(), unexpected.front());
  for (const auto& [name, shape] : expected) {
    CG_CHECK(ckpt.contains(name), "checkpoint {} is missing {} (expected shape {}){}", dir, name,
             c10::str(at::IntArrayRef(shape)),
             name == "lm_head.weight" && ckpt.contains("model.embed_tokens.weight")
                 ? "; if the model's output layer is its embed_tokens (saved tied), set tie_word_embeddings to true "
                   "in its config.json"
                 : "");
    const auto& info = ckpt.info(name);
    CG_CHECK(info.shape == shape, "checkpoint {}: {} has shape {} but the model expects {} (check config.json "
             "or model.flavor)", dir, name, c10::str(at::IntArrayRef(info.shape)), c10::str(at::IntArrayRef(shape)));
    CG_CHECK(at::isFloatingType(info.scalar_type), "checkpoint {}: {} is stored as {}, not as floating point (F16, "
             "BF16, F32, F64): a quantized checkpoint cannot be loaded as base weights; give the unquantized one",
             dir, name, info.dtype);
  }
}

void check_hf_folder_fits(const HfCheckpoint& ckpt, const LlamaConfig& c) {
  const std::string& dir = ckpt.dir();
  // The layer count first: a config.json that says 2^40 layers would make even the list of expected names huge.
  int64_t layers = 0;
  for (const auto& k : ckpt.keys()) {
    if (k.rfind("model.layers.", 0) != 0) continue;
    const int64_t i = std::strtoll(k.c_str() + 13, nullptr, 10);
    layers = std::max(layers, i < 0 || i == LLONG_MAX ? i : i + 1);
  }
  CG_CHECK(layers == c.num_hidden_layers, "{}/config.json says num_hidden_layers {} but the weights in {} hold {} "
           "layers: the config.json is another model's; give the folder's own", dir, c.num_hidden_layers, dir, layers);
  check_hf_tensors(ckpt, llama_tensor_shapes(c));
}

void load_hf_weights(LlamaImpl& model, const std::string& dir) { load_hf_weights(model, HfCheckpoint(dir)); }

void load_hf_weights(LlamaImpl& model, const HfCheckpoint& ckpt) {
  const std::string& dir = ckpt.dir();
  const auto specs = model.param_specs();
  NamedShapes expected;
  for (const auto& s : specs) expected.emplace_back(s.name, s.full_shape);
  check_hf_tensors(ckpt, expected);

  at::NoGradGuard no_grad;
  int64_t bytes = 0;
  for (const auto& s : specs) {
    at::Tensor part = s.shard_dim < 0 ? ckpt.read(s.name) : ckpt.read_slice(s.name, s.shard_dim, s.shard_start,
                                                                              s.shard_len);
    const int64_t pad = s.shard_dim < 0 ? 0 : s.param.size(s.shard_dim) - s.shard_len;
    if (pad > 0) {  // vocabulary padding rows stay zero
      auto shape = part.sizes().vec();
      shape[s.shard_dim] = pad;
      part = at::cat({part, at::zeros(shape, part.options())}, s.shard_dim);
    }
    bytes += part.numel() * part.element_size();
    s.param.copy_(part.to(s.param.scalar_type()));
  }
  spdlog::info("loaded {} base tensors ({} from file) from {} ({} files)", specs.size(), human_bytes(bytes), dir,
               ckpt.num_files());
}

}  // namespace cg::model
