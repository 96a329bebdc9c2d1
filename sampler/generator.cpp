// Generator: the decode loop (prefill, then one token per step through the KV cache) and the dp split.
#include "sampler/generator.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>

#include "common/error.h"
#include "data/rng.h"
#include "dist/tp_ops.h"
#include "model/llama.h"

namespace cg {

namespace {

// Batches of at most batch_size prompt indices of equal token length, in order of first appearance.
std::vector<std::vector<size_t>> length_batches(const std::vector<std::vector<int32_t>>& prompts, int64_t batch_size) {
  std::map<size_t, std::vector<size_t>> by_len;
  std::vector<size_t> len_order;
  for (size_t i = 0; i < prompts.size(); ++i) {
    CG_CHECK(!prompts[i].empty(), "prompt {} is empty (it needs at least BOS)", i);
    auto [it, fresh] = by_len.try_emplace(prompts[i].size());
    if (fresh) len_order.push_back(prompts[i].size());
    it->second.push_back(i);
  }
  std::vector<std::vector<size_t>> batches;
  for (size_t len : len_order) {
    const auto& idx = by_len[len];
    for (size_t s = 0; s < idx.size(); s += batch_size)
      batches.emplace_back(idx.begin() + s, idx.begin() + std::min<size_t>(idx.size(), s + batch_size));
  }
  return batches;
}

}  // namespace

Generator::Generator(model::LlamaImpl& model, std::vector<std::string> pieces, int eos_id, dist::CommPtr tp)
    : model_(model), pieces_(std::move(pieces)), eos_(eos_id), tp_(std::move(tp)) {
  CG_CHECK(model.config().vocab_size >= static_cast<int64_t>(pieces_.size()),
           "the model's vocabulary ({}) is smaller than the tokenizer's ({}); use the tokenizer the model was "
           "trained with",
           model.config().vocab_size, pieces_.size());
  CG_CHECK(eos_ >= 0 && eos_ < static_cast<int>(pieces_.size()), "EOS id {} is outside the vocabulary ({})", eos_,
           pieces_.size());
}

std::vector<Generation> Generator::generate(const std::vector<std::vector<int32_t>>& prompts,
                                            const GenerationParams& params, const GenerationProgress& progress,
                                            const std::vector<uint64_t>& streams) {
  torch::NoGradGuard no_grad;
  CG_CHECK(params.batch_size >= 1 && params.max_new_tokens >= 1,
           "sample.batch_size ({}) and sample.max_new_tokens ({}) must be >= 1", params.batch_size,
           params.max_new_tokens);
  CG_CHECK(streams.empty() || streams.size() == prompts.size(), "{} RNG streams for {} prompts", streams.size(),
           prompts.size());
  const int vocab = vocab_size();
  const int eos = eos_;
  TokenGrammar grammar(CrystalGrammar(params.mode), pieces_, eos);
  std::vector<Generation> out(prompts.size());

  const auto device = model_.device();
  int64_t done = 0, generated = 0;
  for (const auto& batch : length_batches(prompts, params.batch_size)) {
    const int64_t B = static_cast<int64_t>(batch.size());
    const int64_t T = static_cast<int64_t>(prompts[batch[0]].size());
    CG_CHECK(T + params.max_new_tokens <= model_.config().max_position_embeddings,
             "prompt ({} tokens) + sample.max_new_tokens ({}) exceeds the model's {} positions; lower "
             "sample.max_new_tokens",
             T, params.max_new_tokens, model_.config().max_position_embeddings);
    std::vector<std::mt19937_64> rng;
    for (size_t i : batch) rng.emplace_back(Rng::derive({params.seed, streams.empty() ? i : streams[i]}));
    std::vector<int64_t> flat;
    flat.reserve(B * T);
    for (size_t i : batch) flat.insert(flat.end(), prompts[i].begin(), prompts[i].end());
    at::Tensor tokens = torch::tensor(flat, at::TensorOptions().dtype(at::kLong)).view({B, T}).to(device);  // (B, T)
    model::KVCache cache = model_.make_cache(B, T + params.max_new_tokens);

    std::vector<GrammarState> state(B, grammar.grammar().start());
    std::vector<char> finished(B, 0);
    std::vector<const uint8_t*> masks(B, nullptr);
    std::vector<int> picked(B, -1);
    // rows[r]: the sequence (index into this batch) in row r of the model's batch. Once a quarter of the rows hold
    // finished sequences, the live rows of the tokens and of every layer's KV cache are gathered into a smaller
    // batch: finished rows no longer cost compute, nor (on a GPU, where decode reads the whole cache every step)
    // cache bandwidth. Each row's numbers do not depend on its neighbours, so the samples do not change.
    std::vector<int64_t> rows(B);
    std::iota(rows.begin(), rows.end(), int64_t{0});
    // Logits come to the host every step (the grammar lives there). From a GPU they land in pinned memory: a copy
    // into pageable memory runs at a fraction of the bus speed, and at batch 256 x 32k vocabulary it is 33 MB a step.
    at::Tensor host_logits;
    int64_t pos = 0;
    for (int64_t step = 0; step < params.max_new_tokens; ++step) {
      const int64_t R = static_cast<int64_t>(rows.size());
      at::Tensor logits = model_.forward(tokens, pos, &cache);  // (R, T_step, vocab_local)
      pos += tokens.size(1);
      logits = logits.select(1, logits.size(1) - 1);  // (R, vocab_local)
      if (tp_ && tp_->size() > 1) logits = dist::gather_from_tp(logits.contiguous(), tp_);  // (R, vocab_padded)
      logits = logits.to(at::kFloat);
      if (device.is_cuda()) {
        if (!host_logits.defined() || host_logits.sizes() != logits.sizes())
          host_logits = at::empty(logits.sizes(), at::TensorOptions().dtype(at::kFloat).pinned_memory(true));
        host_logits.copy_(logits);
      } else {
        host_logits = logits.contiguous();
      }
      const float* lp = host_logits.data_ptr<float>();
      const int64_t row = host_logits.size(1);
      // Masks first, serially (the mask cache may grow); then every sequence samples from its own logits row with
      // its own RNG stream, in parallel (independent, so the result does not depend on the thread count); then the
      // grammar states advance, serially.
      for (int64_t r = 0; r < R; ++r) {
        const int64_t b = rows[r];
        masks[b] = params.constrained && !finished[b] ? grammar.allowed(state[b]).data() : nullptr;
      }
      at::parallel_for(0, R, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t b = rows[r];
          if (!finished[b]) picked[b] = sample_token(lp + r * row, vocab, masks[b], params.sampling, rng[b]);
        }
      });
      std::vector<int64_t> next(R, eos);
      for (int64_t r = 0; r < R; ++r) {
        const int64_t b = rows[r];
        if (finished[b]) continue;
        const int tok = picked[b];
        if (tok < 0) {  // nothing allowed (cannot happen for a live grammar): stop this sequence
          finished[b] = 1;
          continue;
        }
        if (params.constrained) grammar.advance(state[b], tok);
        if (tok == eos) {
          finished[b] = 1;
          out[batch[b]].hit_eos = true;
        } else {
          out[batch[b]].tokens.push_back(tok);
          next[r] = tok;
          ++generated;
        }
      }
      std::vector<int64_t> live;  // rows still generating
      for (int64_t r = 0; r < R; ++r)
        if (!finished[rows[r]]) live.push_back(r);
      if (live.empty()) break;
      if (4 * static_cast<int64_t>(live.size()) <= 3 * R) {
        const at::Tensor idx = torch::tensor(live, at::TensorOptions().dtype(at::kLong)).to(device);
        for (auto& k : cache.k) k = k.index_select(0, idx);
        for (auto& v : cache.v) v = v.index_select(0, idx);
        std::vector<int64_t> rows2, next2;
        for (int64_t r : live) rows2.push_back(rows[r]), next2.push_back(next[r]);
        rows.swap(rows2);
        next.swap(next2);
      }
      tokens = torch::tensor(next, at::TensorOptions().dtype(at::kLong))
                   .view({static_cast<int64_t>(next.size()), 1})
                   .to(device);  // (rows, 1)
    }
    done += B;
    if (progress) progress(done, static_cast<int64_t>(prompts.size()), generated);
  }
  return out;
}

std::vector<Generation> generate_data_parallel(Generator& gen, const std::vector<std::vector<int32_t>>& prompts,
                                               const GenerationParams& params, const dist::ParallelDims& dims,
                                               const GenerationProgress& progress) {
  if (dims.dp == 1) return gen.generate(prompts, params, progress);
  const size_t n = prompts.size();
  std::vector<std::vector<int32_t>> mine;
  std::vector<uint64_t> streams;
  for (size_t i = dims.dp_rank; i < n; i += dims.dp) {
    mine.push_back(prompts[i]);
    streams.push_back(i);
  }
  const std::vector<Generation> local = gen.generate(mine, params, progress, streams);

  // Row i: [num tokens, hit_eos, tokens..., -1 padding], filled by its dp group and -1 elsewhere; max over dp.
  const int64_t width = 2 + params.max_new_tokens;
  at::Tensor table = at::full({static_cast<int64_t>(n), width}, -1, at::TensorOptions().dtype(at::kLong));
  auto acc = table.accessor<int64_t, 2>();
  for (size_t k = 0; k < local.size(); ++k) {
    const int64_t i = static_cast<int64_t>(streams[k]);
    acc[i][0] = static_cast<int64_t>(local[k].tokens.size());
    acc[i][1] = local[k].hit_eos ? 1 : 0;
    for (size_t t = 0; t < local[k].tokens.size(); ++t) acc[i][2 + t] = local[k].tokens[t];
  }
  dims.host_dp_comm->all_reduce(table, dist::ReduceOp::Max);
  const auto res = table.accessor<int64_t, 2>();
  std::vector<Generation> out(n);
  for (size_t i = 0; i < n; ++i) {
    CG_CHECK(res[i][0] >= 0, "sample {} came back from no dp group", i);
    out[i].hit_eos = res[i][1] == 1;
    for (int64_t t = 0; t < res[i][0]; ++t) out[i].tokens.push_back(static_cast<int32_t>(res[i][2 + t]));
  }
  return out;
}

}  // namespace cg
