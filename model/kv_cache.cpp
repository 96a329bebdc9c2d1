#include "model/kv_cache.h"

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

void KVCache::copy_rows(const at::Tensor& dst, const KVCache& from, const at::Tensor& src, int64_t first, int64_t n) {
  CG_CHECK(from.k.size() == k.size(), "KVCache::copy_rows: {} layers into {}", from.k.size(), k.size());
  const bool combined = kv.size() == k.size() && from.kv.size() == k.size();  // both: one copy for k and v
  for (size_t l = 0; l < k.size(); ++l) {
    if (combined) {
      kv[l].narrow(3, first, n).index_copy_(1, dst, from.kv[l].narrow(3, first, n).index_select(1, src));
      continue;
    }
    k[l].narrow(2, first, n).index_copy_(0, dst, from.k[l].narrow(2, first, n).index_select(0, src));
    v[l].narrow(2, first, n).index_copy_(0, dst, from.v[l].narrow(2, first, n).index_select(0, src));
  }
}

}  // namespace cg::model
