// One generated sequence (the decoder's result, and what cgsample's journal keeps): no torch.
#pragma once
#include <cstdint>
#include <vector>

namespace cg {

struct Generation {
  std::vector<int32_t> tokens;  // generated ids, EOS excluded
  bool hit_eos = false;         // false: stopped at max_new_tokens (or the grammar had nothing left to allow)
};

}  // namespace cg
