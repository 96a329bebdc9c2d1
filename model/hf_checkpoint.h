// Hugging Face checkpoint folders: config.json + model.safetensors, or shards + model.safetensors.index.json.
// Reading is by key over all shards; loading into a Llama reads only this rank's slice of every weight.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/llama_config.h"
#include "model/safetensors.h"

namespace cg::model {

class LlamaImpl;

class HfCheckpoint {
 public:
  // Opens <dir>/model.safetensors.index.json (every shard it names), else <dir>/model.safetensors, else the single
  // *.safetensors file in dir. Errors name the folder and what is missing.
  explicit HfCheckpoint(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::vector<std::string> keys() const;  // sorted, over all shards
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  const TensorInfo& info(const std::string& name) const { return file(name).info(name); }
  at::Tensor read(const std::string& name) const { return file(name).read(name); }
  at::Tensor read_slice(const std::string& name, int64_t dim, int64_t start, int64_t len) const {
    return file(name).read_slice(name, dim, start, len);
  }
  size_t num_files() const { return files_.size(); }

 private:
  const SafetensorsFile& file(const std::string& name) const;
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> where_;
};

// Write an HF-layout folder: config.json, and the tensors in order as model.safetensors (all fit in max_shard_bytes)
// or as model-0000i-of-0000n.safetensors shards of at most max_shard_bytes each (a bigger tensor gets its own shard)
// plus model.safetensors.index.json. Tensors keep their dtype.
void write_hf_checkpoint(const std::string& dir, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                         const LlamaConfig& config, int64_t max_shard_bytes = int64_t{5} << 30);

// Load this rank's slices of every base weight, cast to the model's dtype, onto its device. Missing keys, unexpected
// keys (except rotary_emb.inv_freq buffers) and shape mismatches are errors naming the key (and both shapes).
void load_hf_weights(LlamaImpl& model, const std::string& dir);

}  // namespace cg::model
