#include "model/hf_checkpoint.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/log.h"
#include "model/llama.h"

namespace fs = std::filesystem;

namespace cg::model {

HfCheckpoint::HfCheckpoint(const std::string& dir) : dir_(dir) {
  CG_CHECK(fs::is_directory(dir), "checkpoint folder {} does not exist (model.hf_dir)", dir);
  const auto index = fs::path(dir) / "model.safetensors.index.json";
  std::vector<std::pair<std::string, std::string>> expected;  // (key, file) from the index
  std::vector<std::string> names;
  if (fs::exists(index)) {
    std::ifstream in(index);
    nlohmann::json j;
    try {
      in >> j;
    } catch (const std::exception& e) {
      CG_FAIL("{} is not valid JSON: {}", index.string(), e.what());
    }
    CG_CHECK(j.contains("weight_map"), "{} has no weight_map", index.string());
    std::set<std::string> files;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      files.insert(it->get<std::string>());
      expected.emplace_back(it.key(), it->get<std::string>());
    }
    names.assign(files.begin(), files.end());
  } else if (fs::exists(fs::path(dir) / "model.safetensors")) {
    names.push_back("model.safetensors");
  } else {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") names.push_back(e.path().filename().string());
    CG_CHECK(names.size() == 1, "{} has no model.safetensors.index.json and {} *.safetensors files; expected an index "
             "or exactly one file", dir, names.size());
  }
  std::map<std::string, const SafetensorsFile*> by_file;
  for (const auto& n : names) {
    const auto p = fs::path(dir) / n;
    CG_CHECK(fs::exists(p), "{}: shard {} named in the index is missing", dir, n);
    files_.push_back(std::make_unique<SafetensorsFile>(p.string()));
    by_file[n] = files_.back().get();
    for (const auto& k : files_.back()->keys()) {
      CG_CHECK(!where_.count(k), "{}: tensor {} is in two shards ({} and {})", dir, k, where_[k]->path(), n);
      where_[k] = files_.back().get();
    }
  }
  for (const auto& [key, f] : expected)
    CG_CHECK(by_file.at(f)->contains(key), "{}: the index puts {} in {} but that shard does not hold it", dir, key, f);
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

void write_hf_checkpoint(const std::string& dir, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                         const LlamaConfig& config, int64_t max_shard_bytes) {
  fs::create_directories(dir);
  {
    std::ofstream out(fs::path(dir) / "config.json");
    out << config.to_hf_json();
    CG_CHECK(out.good(), "cannot write {}/config.json", dir);
  }
  // Greedy shards in the given order.
  std::vector<std::vector<std::pair<std::string, at::Tensor>>> shards(1);
  int64_t in_shard = 0, total = 0;
  for (const auto& nt : tensors) {
    const int64_t bytes = nt.second.numel() * nt.second.element_size();
    if (!shards.back().empty() && in_shard + bytes > max_shard_bytes) shards.emplace_back(), in_shard = 0;
    shards.back().push_back(nt);
    in_shard += bytes, total += bytes;
  }
  const std::map<std::string, std::string> meta = {{"format", "pt"}};
  if (shards.size() == 1) {
    write_safetensors((fs::path(dir) / "model.safetensors").string(), shards[0], meta);
    return;
  }
  nlohmann::ordered_json index;
  index["metadata"] = {{"total_size", total}};
  nlohmann::ordered_json map = nlohmann::ordered_json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    const auto name = fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    write_safetensors((fs::path(dir) / name).string(), shards[i], meta);
    for (const auto& nt : shards[i]) map[nt.first] = name;
  }
  index["weight_map"] = map;
  std::ofstream out(fs::path(dir) / "model.safetensors.index.json");
  out << index.dump(2) << "\n";
  CG_CHECK(out.good(), "cannot write {}/model.safetensors.index.json", dir);
}

namespace {
bool ignored_key(const std::string& k) {
  const std::string suffix = "rotary_emb.inv_freq";
  return k.size() >= suffix.size() && k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

void load_hf_weights(LlamaImpl& model, const std::string& dir) {
  const HfCheckpoint ckpt(dir);
  const auto specs = model.param_specs();
  std::set<std::string> wanted;
  for (const auto& s : specs) wanted.insert(s.name);
  std::vector<std::string> unexpected;
  for (const auto& k : ckpt.keys())
    if (!wanted.count(k) && !ignored_key(k)) unexpected.push_back(k);
  CG_CHECK(unexpected.empty(), "checkpoint {} has {} unexpected tensors, e.g. {} (is it a LLaMA checkpoint matching "
           "config.json?)", dir, unexpected.size(), unexpected.front());

  at::NoGradGuard no_grad;
  int64_t bytes = 0;
  for (const auto& s : specs) {
    CG_CHECK(ckpt.contains(s.name), "checkpoint {} is missing {} (expected shape {})", dir, s.name,
             c10::str(at::IntArrayRef(s.full_shape)));
    const auto& info = ckpt.info(s.name);
    CG_CHECK(info.shape == s.full_shape, "checkpoint {}: {} has shape {} but the model expects {} (check config.json "
             "or model.flavor)", dir, s.name, c10::str(at::IntArrayRef(info.shape)), c10::str(at::IntArrayRef(s.full_shape)));
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
