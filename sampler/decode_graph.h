// DecodeGraphs: the sampler's decode step replayed as CUDA graphs (sample.cuda_graphs).
//
// On a GPU a 7B decode step is bound by the host: ~800 operator calls through libtorch's dispatcher took ~26 ms a
// step on an H200 machine's cores while its kernels took ~9 ms (docs/performance.md, GPU). A CUDA graph issues the
// recorded kernels with one call. A graph fixes its shapes and addresses, so every step runs all `cap` rows of the
// cache (rows past the running ones are padding: token 0 at position `prefix`, in free rows whose cache entries are
// rewritten before any row reads them) with one attention chunk whose span is the rows' largest position rounded
// up to kSpanBucket: one graph per span bucket, captured the first time that bucket comes up (with the one-pass
// attention, Llama::one_pass_decode, rows read their own positions whatever the span: one graph). The tokens and
// positions go through two device buffers the graphs read (Llama::decode_step_on_device: nothing on the host).
// Each capture is checked against the eager step it was captured from (the same inputs): a mismatch or a failed
// capture turns the graphs off with a warning and the padded steps run eagerly, as they do on a CPU (where this
// class exists for tests of the padding). tp 1 only.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

namespace cg::model {
class LlamaImpl;
struct KVCache;
}  // namespace cg::model

namespace cg {

class DecodeGraphs {
 public:
  static constexpr int64_t kSpanBucket = 64;

  // cache: the generator's, all of its rows (the graphs' batch); prefix: the shared prompt's cache or nullptr.
  // capture: record and replay graphs (CUDA); false: run the same padded steps eagerly.
  DecodeGraphs(model::LlamaImpl& model, model::KVCache& cache, const model::KVCache* prefix, bool capture);
  ~DecodeGraphs();

  // Rows [0, next.size()) take tokens next at positions pos -> their logits (rows, vocab_local) fp32, a view that
  // the next step overwrites.
  at::Tensor step(const std::vector<int64_t>& next, const std::vector<int64_t>& pos);

  int64_t last_positions_read() const { return last_read_; }  // per layer, padding rows included
  int64_t graphs_captured() const { return static_cast<int64_t>(graphs_.size()); }

 private:
  struct Graph;
  at::Tensor replay(int64_t span);  // the graph of this span, captured first if new

  model::LlamaImpl& model_;
  model::KVCache& cache_;
  const model::KVCache* prefix_;
  int64_t cap_, prefix_len_;
  bool capture_;
  at::Tensor tokens_, pos_;            // (cap, 1), (cap) int64 on the model's device: what the graphs read
  at::Tensor host_tokens_, host_pos_;  // their host staging (pinned on a GPU)
  std::map<int64_t, std::unique_ptr<Graph>> graphs_;  // by span
  int64_t last_read_ = 0;
};

}  // namespace cg
