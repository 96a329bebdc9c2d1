#include "model/kv_cache.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>

#include "common/error.h"

namespace cg::model {

std::vector<DecodeChunk> decode_chunks(const std::vector<int64_t>& positions, int64_t max_chunks,
                                       int64_t chunk_cost) {
  const int64_t n = static_cast<int64_t>(positions.size());
  CG_CHECK(n > 0 && max_chunks >= 1, "decode_chunks: {} rows, {} chunks", n, max_chunks);
  constexpr int64_t kInf = std::numeric_limits<int64_t>::max() / 4;
  const int64_t G = std::min(max_chunks, n);
  // best[g][i]: least cost of rows [0, i) in g chunks; from[g][i]: where its last chunk starts.
  std::vector<std::vector<int64_t>> best(G + 1, std::vector<int64_t>(n + 1, kInf)), from = best;
  best[0][0] = 0;
  for (int64_t g = 1; g <= G; ++g)
    for (int64_t i = 1; i <= n; ++i) {
      int64_t span = 0;
      for (int64_t j = i - 1; j >= 0; --j) {  // last chunk [j, i)
        span = std::max(span, positions[j] + 1);
        if (best[g - 1][j] >= kInf) continue;
        const int64_t c = best[g - 1][j] + (i - j) * span + chunk_cost;
        if (c < best[g][i]) best[g][i] = c, from[g][i] = j;
      }
    }
  int64_t g = 1;
  for (int64_t k = 2; k <= G; ++k)
    if (best[k][n] < best[g][n]) g = k;
  std::vector<DecodeChunk> chunks(g);
  for (int64_t i = n; g > 0; --g) {
    const int64_t j = from[g][i];
    auto& c = chunks[g - 1];
    c.start = j, c.rows = i - j;
    c.span = 1 + *std::max_element(positions.begin() + j, positions.begin() + i);
    i = j;
  }
  return chunks;
}

void KVCache::copy_rows(const std::vector<int64_t>& dst, const KVCache& from, const std::vector<int64_t>& src,
                        int64_t first, int64_t n, CopyPath path) {
  CG_CHECK(from.k.size() == k.size(), "KVCache::copy_rows: {} layers into {}", from.k.size(), k.size());
  CG_CHECK(dst.size() == src.size(), "KVCache::copy_rows: {} destination rows for {} sources", dst.size(), src.size());
  if (dst.empty() || k.empty() || n <= 0) return;
  for (size_t i = 0; i < dst.size(); ++i)
    CG_CHECK(src[i] >= 0 && src[i] < from.batch() && dst[i] >= 0 && dst[i] < batch(), "KVCache::copy_rows: row {} "
             "of {} -> row {} of {} is outside the caches", src[i], from.batch(), dst[i], batch());
  const bool combined = kv.size() == k.size() && from.kv.size() == k.size();  // both: one copy for k and v
  constexpr size_t kFewPairs = 4;
  bool per_pair = path == CopyPath::PerPair ||
                  (path == CopyPath::Auto && (k.front().is_cpu() || dst.size() <= kFewPairs));
  if (per_pair && from.k.front().is_alias_of(k.front())) {
    // In order, pair i must not read a row that pairs before it wrote; other views of this storage: by index.
    std::vector<char> written(static_cast<size_t>(batch()), 0);
    per_pair = &from == this;
    for (size_t i = 0; i < dst.size() && per_pair; ++i) {
      per_pair = !written[src[i]];
      written[dst[i]] = 1;
    }
  }
  if (per_pair) {
    for (size_t i = 0; i < dst.size(); ++i)
      for (size_t l = 0; l < k.size(); ++l) {
        if (combined) {
          kv[l].select(1, dst[i]).narrow(2, first, n).copy_(from.kv[l].select(1, src[i]).narrow(2, first, n));
          continue;
        }
        k[l].select(0, dst[i]).narrow(1, first, n).copy_(from.k[l].select(0, src[i]).narrow(1, first, n));
        v[l].select(0, dst[i]).narrow(1, first, n).copy_(from.v[l].select(0, src[i]).narrow(1, first, n));
      }
    return;
  }
  const auto opt = at::TensorOptions().dtype(at::kLong);
  const at::Tensor d = at::tensor(dst, opt).to(k.front().device()), s = at::tensor(src, opt).to(k.front().device());
  for (size_t l = 0; l < k.size(); ++l) {
    if (combined) {
      kv[l].narrow(3, first, n).index_copy_(1, d, from.kv[l].narrow(3, first, n).index_select(1, s));
      continue;
    }
    k[l].narrow(2, first, n).index_copy_(0, d, from.k[l].narrow(2, first, n).index_select(0, s));
    v[l].narrow(2, first, n).index_copy_(0, d, from.v[l].narrow(2, first, n).index_select(0, s));
  }
}

}  // namespace cg::model
