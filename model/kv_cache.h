// KVCache: preallocated keys/values of every layer for incremental decoding (the sampler's prefill + decode steps).
// RowPositions: one decode step in which every row of the batch is at its own position (continuous batching).
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace cg::model {

struct KVCache {
  std::vector<at::Tensor> k, v;  // per layer (B, n_kv_heads_local, max_len, head_dim), the model's dtype and device
  // Per layer (2, B, n_kv_heads_local, max_len, head_dim) when k and v are its two halves (make_cache): a decode
  // step then writes a row's key and value with one scatter. Empty for caches built otherwise.
  std::vector<at::Tensor> kv;
  int64_t max_len = 0;           // positions [0, max_len) can be cached

  int64_t batch() const { return k.empty() ? 0 : k.front().size(0); }

  // How copy_rows moves rows: one copy per (pair, layer), or per layer a gather of the sources then a scatter
  // (index_select / index_copy_: two kernels whatever the pairs, but ~70x slower than plain copies on CPU, where
  // those ops on strided views take a slow path). Auto: pair by pair on CPU or for a few pairs, else by index.
  enum class CopyPath { Auto, PerPair, ByIndex };

  // Rows src[i] of `from` into rows dst[i] of this cache, positions [first, first + n) of every layer. As if every
  // source were read before anything is written: `from` may be *this, even with rows swapped (then, if a pair would
  // read a row an earlier pair wrote, the copy goes by index whatever `path` says).
  void copy_rows(const std::vector<int64_t>& dst, const KVCache& from, const std::vector<int64_t>& src, int64_t first,
                 int64_t n, CopyPath path = CopyPath::Auto);

  // Rows [start, start + n) of every layer as views: what is written through them lands in this cache.
  KVCache rows(int64_t start, int64_t n) const {
    KVCache c;
    c.max_len = max_len;
    for (const auto& t : k) c.k.push_back(t.narrow(0, start, n));
    for (const auto& t : v) c.v.push_back(t.narrow(0, start, n));
    for (const auto& t : kv) c.kv.push_back(t.narrow(1, start, n));
    return c;
  }
};

// Rows [start, start + rows) of a decode step, reading cache positions [prefix, prefix + span) of their own rows.
struct DecodeChunk {
  int64_t start = 0, rows = 0, span = 0;
  at::Tensor mask;  // (rows, 1, 1, span) additive, the model's dtype: 0 where key position <= pos[b], else -inf
};

// Row b writes its key/value at position pos[b] of its cache row and attends to positions [0, pos[b]]. A row reads
// the positions up to its chunk's span (the rest masked): rows at very different positions are split into chunks
// so that short rows do not read the long rows' positions. With a shared prefix (every row's first `prefix` tokens
// the same, as with one prompt for all samples) positions [0, prefix) are read once per chunk from one copy,
// prefix_k / prefix_v (1, n_kv_heads_local, prefix, head_dim) of the layer at hand, instead of once per row.
struct RowPositions {
  at::Tensor pos;  // (B) int64 on the model's device
  std::vector<DecodeChunk> chunks;
  int64_t prefix = 0;
  at::Tensor prefix_k, prefix_v;
  at::Tensor kv;  // the layer's KVCache::kv when the cache has one (one scatter for the key and value)
  // One-pass decode attention (Llama::one_pass_decode, model/decode_kernels.h): each row reads exactly its own
  // positions, so chunks and masks are unused; cos, sin (B, head_dim) are the rows' RoPE tables at pos.
  bool one_pass = false;
  at::Tensor cos, sin;
};

// The split of rows [0, positions.size()) into at most max_chunks contiguous chunks (span = 1 + the chunk's largest
// position; decode_step passes positions past its shared prefix, the prefix added to chunk_cost) minimising
// sum(rows * span) + chunk_cost * chunks: cached positions read, plus a price per extra attention call. Exact
// (dynamic programming over the row order); masks left undefined.
std::vector<DecodeChunk> decode_chunks(const std::vector<int64_t>& positions, int64_t max_chunks,
                                       int64_t chunk_cost);

}  // namespace cg::model
