// KVCache: preallocated keys/values of every layer for incremental decoding (the sampler's prefill + decode steps).
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace cg::model {

struct KVCache {
  std::vector<at::Tensor> k, v;  // per layer (B, n_kv_heads_local, max_len, head_dim), the model's dtype and device
  int64_t max_len = 0;           // positions [0, max_len) can be cached

  int64_t batch() const { return k.empty() ? 0 : k.front().size(0); }
};

}  // namespace cg::model
