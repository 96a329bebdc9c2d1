// KVCache: preallocated keys/values of every layer for incremental decoding (the sampler's prefill + decode steps).
// RowPositions: one decode step in which every row of the batch is at its own position (continuous batching).
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace cg::model {

struct KVCache {
  std::vector<at::Tensor> k, v;  // per layer (B, n_kv_heads_local, max_len, head_dim), the model's dtype and device
  int64_t max_len = 0;           // positions [0, max_len) can be cached

  int64_t batch() const { return k.empty() ? 0 : k.front().size(0); }

  // Rows [start, start + n) of every layer as views: what is written through them lands in this cache.
  KVCache rows(int64_t start, int64_t n) const {
    KVCache c;
    c.max_len = max_len;
    for (const auto& t : k) c.k.push_back(t.narrow(0, start, n));
    for (const auto& t : v) c.v.push_back(t.narrow(0, start, n));
    return c;
  }
};

// Row b writes its key/value at position pos[b] of its cache row and attends to positions [0, pos[b]].
struct RowPositions {
  at::Tensor pos;    // (B) int64 on the model's device
  at::Tensor mask;   // (B, 1, 1, span) additive, the model's dtype: 0 where key position <= pos[b], else -inf
  int64_t span = 0;  // max(pos) + 1: the cache positions this step reads
};

}  // namespace cg::model
