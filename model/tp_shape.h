// TpShape: which slice of a tensor-parallel model this rank holds (numbers only; the comms live in dist/).
#pragma once
#include <cstdint>
#include <string>

namespace cg::model {

struct TpShape {
  int rank = 0;  // tp rank, 0 <= rank < size
  int size = 1;  // tp degree
};

// How a parameter is split across tp ranks.
enum class ParallelStyle {
  None,    // replicated (norms, and every layer at tp 1)
  Column,  // weight (out, in) split on out (dim 0): q, k, v, gate, up
  Row,     // weight (out, in) split on in (dim 1): o, down
  Vocab,   // table (V, d) split on the vocabulary (dim 0), padded to a multiple of tp: embed_tokens, lm_head
};

const char* to_string(ParallelStyle s);

// n / tp, or an error "num_key_value_heads 4 is not divisible by tp 8; pick a tp that divides it".
int64_t tp_local(int64_t n, int tp, const std::string& what);

// The vocabulary padded up to a multiple of tp (padded rows are zero and never a valid target).
inline int64_t padded_vocab(int64_t vocab, int tp) { return (vocab + tp - 1) / tp * tp; }

}  // namespace cg::model
