// Hugging Face checkpoint folders: config.json + model.safetensors, or shards + model.safetensors.index.json.
// Reading is by key over all shards; loading into a Llama reads only this rank's slice of every weight. Writing is
// streamed (HfCheckpointWriter: one tensor in memory at a time), so a 70B merged export fits in a few GB.
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
  // Tied embeddings (config.json tie_word_embeddings true), as transformers loads them: a folder without
  // lm_head.weight reads model.embed_tokens.weight under that name too (tied()); one whose lm_head.weight differs
  // from embed_tokens is refused (transformers would overwrite it with embed_tokens without a word).
  explicit HfCheckpoint(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::vector<std::string> keys() const;  // sorted, over all shards (a tied lm_head.weight included)
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  const TensorInfo& info(const std::string& name) const { return file(name).info(stored(name)); }
  at::Tensor read(const std::string& name) const { return file(name).read(stored(name)); }
  at::Tensor read_slice(const std::string& name, int64_t dim, int64_t start, int64_t len) const {
    return file(name).read_slice(stored(name), dim, start, len);
  }
  double element(const std::string& name, int64_t flat) const { return file(name).element(stored(name), flat); }
  // After read(): give the tensor's mapped pages back (SafetensorsFile::drop_pages), for readers streaming a model.
  void drop_pages(const std::string& name) const { file(name).drop_pages(stored(name)); }
  size_t num_files() const { return files_.size(); }
  // lm_head.weight is model.embed_tokens.weight (tie_word_embeddings true, no lm_head.weight stored).
  bool tied() const { return !alias_.empty(); }

 private:
  const SafetensorsFile& file(const std::string& name) const;
  // The name a tensor is stored under: model.embed_tokens.weight for a tied lm_head.weight, else name.
  const std::string& stored(const std::string& name) const;
  void tie_word_embeddings();
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> where_;
  std::map<std::string, std::string> alias_;  // lm_head.weight -> model.embed_tokens.weight when tied
};

// (name, full shape) of every tensor.
using NamedShapes = std::vector<std::pair<std::string, std::vector<int64_t>>>;

// The tensors of a LLaMA checkpoint in checkpoint order, computed from the config alone (nothing allocated): the
// names and full shapes LlamaImpl::param_specs() lists (embed_tokens (V, d); per layer q,o (d, d), k,v (kv_dim, d),
// gate,up (I, d), down (d, I), two norms (d); norm (d); lm_head (V, d)).
NamedShapes llama_tensor_shapes(const LlamaConfig& c);

// A buffer older checkpoints saved beside the weights (model.layers.N.self_attn.rotary_emb.inv_freq): no weight,
// recomputed from the config, ignored on load.
bool hf_buffer_key(const std::string& name);

// Throws unless ckpt holds every expected tensor with its shape and nothing else (rotary_emb.inv_freq buffers
// aside); errors name the folder, the key and both shapes.
void check_hf_tensors(const HfCheckpoint& ckpt, const NamedShapes& expected);
// The same for the model config `c` describes, from the folder's headers alone: call it before the model is
// allocated, so a config.json of another (bigger) model fails at once instead of allocating that model first.
void check_hf_folder_fits(const HfCheckpoint& ckpt, const LlamaConfig& c);

// config.json's torch_dtype for weights of `dtype`: "float32", "float16" or "bfloat16" (what transformers'
// torch_dtype="auto" loads them in); throws for a dtype no HF LLaMA checkpoint holds.
std::string hf_dtype_name(at::ScalarType dtype);

// One output file of an HF folder and the tensors it holds, in order.
struct HfShard {
  std::string file;  // "model.safetensors" or "model-00002-of-00030.safetensors"
  std::vector<TensorEntry> tensors;
  uint64_t bytes = 0;  // tensor data
};
// Greedy in the given order: a new shard when the next tensor would take this one past max_shard_bytes (a bigger
// tensor gets its own shard). One shard is named model.safetensors, n of them model-0000i-of-0000n.safetensors.
std::vector<HfShard> plan_hf_shards(const std::vector<TensorEntry>& tensors, int64_t max_shard_bytes);

// Streams an HF-layout folder: the layout is planned from (name, dtype, shape) alone, then write() takes the tensors
// one at a time in plan order and finish() writes config.json and, when sharded, model.safetensors.index.json last.
// Each shard is written as <file>.tmp and renamed when complete. Weights left in dir by an earlier export
// (model*.safetensors, the index) are removed first, so old and new shards never mix. A failed write (full disk)
// throws naming the file; then, or when destroyed before finish(), the writer removes its partial file and the shards
// it completed, so no model file of an unfinished export remains.
class HfCheckpointWriter {
 public:
  HfCheckpointWriter(const std::string& dir, std::vector<TensorEntry> tensors, const LlamaConfig& config,
                     int64_t max_shard_bytes = int64_t{5} << 30);
  ~HfCheckpointWriter();
  HfCheckpointWriter(const HfCheckpointWriter&) = delete;
  HfCheckpointWriter& operator=(const HfCheckpointWriter&) = delete;

  void write(const std::string& name, const at::Tensor& t);  // the next planned tensor; dtype and shape must match
  void finish();
  const std::vector<HfShard>& shards() const { return shards_; }

 private:
  void remove_outputs();
  SafetensorsWriter& shard_writer();  // the current shard's writer, opened on first use
  void close_shard();                  // finish the current shard, rename it into place, move to the next
  std::string dir_;
  LlamaConfig config_;
  std::vector<HfShard> shards_;
  size_t shard_ = 0, in_shard_ = 0;  // next tensor: shards_[shard_].tensors[in_shard_]
  std::unique_ptr<SafetensorsWriter> cur_;
  std::vector<std::string> completed_;  // shard paths renamed into place
  bool finished_ = false;
};

// Write an HF-layout folder: config.json, and the tensors in order as model.safetensors (all fit in max_shard_bytes)
// or as model-0000i-of-0000n.safetensors shards of at most max_shard_bytes each (a bigger tensor gets its own shard)
// plus model.safetensors.index.json. Tensors keep their dtype. An HfCheckpointWriter over all of them.
void write_hf_checkpoint(const std::string& dir, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                         const LlamaConfig& config, int64_t max_shard_bytes = int64_t{5} << 30);

// Load this rank's slices of every base weight, cast to the model's dtype, onto its device. Missing keys, unexpected
// keys (except rotary_emb.inv_freq buffers) and shape mismatches are errors naming the key (and both shapes).
void load_hf_weights(LlamaImpl& model, const std::string& dir);
// The same from a folder already open (build_llama checks it before allocating the model, then loads it).
void load_hf_weights(LlamaImpl& model, const HfCheckpoint& ckpt);

}  // namespace cg::model
