#include "sampler/generator.h"

#include <algorithm>
#include <map>

#include "common/error.h"
#include "dist/tp_ops.h"
#include "model/llama.h"

namespace cg {

Generator::Generator(model::LlamaImpl& model, std::vector<std::string> pieces, int eos_id, dist::CommPtr tp)
    : model_(model), pieces_(std::move(pieces)), eos_(eos_id), tp_(std::move(tp)) {
  CG_CHECK(model.config().vocab_size >= static_cast<int64_t>(pieces_.size()),
           "the model's vocabulary ({}) is smaller than the tokenizer's ({}); use the tokenizer the model was "
           "trained with",
           model.config().vocab_size, pieces_.size());
}

std::vector<Generation> Generator::generate(const std::vector<std::vector<int32_t>>& prompts,
                                            const GenerationParams& params, const GenerationProgress& progress) {
  torch::NoGradGuard no_grad;
  CG_CHECK(params.batch_size >= 1 && params.max_new_tokens >= 1, "sample.batch_size and sample.max_new_tokens must be >= 1");
  const int vocab = static_cast<int>(pieces_.size());
  const int eos = eos_;
  TokenGrammar grammar(CrystalGrammar(params.mode), pieces_, eos);
  std::mt19937_64 rng(params.seed);
  std::vector<Generation> out(prompts.size());

  // Batches of equal prompt length, in order of first appearance.
  std::map<size_t, std::vector<size_t>> by_len;
  std::vector<size_t> len_order;
  for (size_t i = 0; i < prompts.size(); ++i) {
    CG_CHECK(!prompts[i].empty(), "prompt {} is empty", i);
    auto [it, fresh] = by_len.try_emplace(prompts[i].size());
    if (fresh) len_order.push_back(prompts[i].size());
    it->second.push_back(i);
  }
  std::vector<std::vector<size_t>> batches;
  for (size_t len : len_order) {
    const auto& idx = by_len[len];
    for (size_t s = 0; s < idx.size(); s += params.batch_size)
      batches.emplace_back(idx.begin() + s, idx.begin() + std::min(idx.size(), s + params.batch_size));
  }

  const auto opts = at::TensorOptions().dtype(at::kLong).device(model_.device());
  int64_t done = 0, generated = 0;
  for (const auto& batch : batches) {
    const int64_t B = static_cast<int64_t>(batch.size());
    const int64_t T = static_cast<int64_t>(prompts[batch[0]].size());
    CG_CHECK(T + params.max_new_tokens <= model_.config().max_position_embeddings,
             "prompt ({} tokens) + sample.max_new_tokens ({}) exceeds the model's {} positions", T,
             params.max_new_tokens, model_.config().max_position_embeddings);
    std::vector<int64_t> flat;
    flat.reserve(B * T);
    for (size_t i : batch) flat.insert(flat.end(), prompts[i].begin(), prompts[i].end());
    at::Tensor tokens = torch::tensor(flat, at::TensorOptions().dtype(at::kLong)).view({B, T}).to(opts.device());
    model::KVCache cache = model_.make_cache(B, T + params.max_new_tokens);

    std::vector<GrammarState> state(B, grammar.grammar().start());
    std::vector<char> finished(B, 0);
    int64_t pos = 0;
    for (int64_t step = 0; step < params.max_new_tokens; ++step) {
      at::Tensor logits = model_.forward(tokens, pos, &cache);  // (B, T_step, vocab_local)
      pos += tokens.size(1);
      logits = logits.select(1, logits.size(1) - 1).contiguous();  // (B, vocab_local)
      if (tp_ && tp_->size() > 1) logits = dist::gather_from_tp(logits, tp_);  // (B, vocab_padded)
      const at::Tensor full = logits.to(at::kCPU, at::kFloat).contiguous();
      const float* lp = full.data_ptr<float>();
      const int64_t row = full.size(1);
      std::vector<int64_t> next(B, eos);
      for (int64_t b = 0; b < B; ++b) {
        if (finished[b]) continue;
        const uint8_t* mask = params.constrained ? grammar.allowed(state[b]).data() : nullptr;
        int tok = sample_token(lp + b * row, vocab, mask, params.sampling, rng);
        if (tok < 0) {  // the grammar allows nothing here (cannot happen for a live grammar): stop this sequence
          finished[b] = 1;
          continue;
        }
        if (params.constrained) grammar.advance(state[b], tok);
        if (tok == eos) {
          finished[b] = 1;
          out[batch[b]].hit_eos = true;
        } else {
          out[batch[b]].tokens.push_back(tok);
          next[b] = tok;
          ++generated;
        }
      }
      if (std::all_of(finished.begin(), finished.end(), [](char f) { return f != 0; })) break;
      tokens = torch::tensor(next, at::TensorOptions().dtype(at::kLong)).view({B, 1}).to(opts.device());
    }
    done += B;
    if (progress) progress(done, static_cast<int64_t>(prompts.size()), generated);
  }
  return out;
}

}  // namespace cg
